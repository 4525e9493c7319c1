package dev.compress.core

/**
 * A decoded picture to the image model's input as the manifest's `image` rule says: EXIF
 * orientation, transparency on white, Pillow's bilinear resize (shorter side to S then a centre
 * crop, or a squash), and float32 NCHW `[1, 3, S, S]` RGB of byte / 255.
 */
class ImagePreprocessor(private val rule: ImageRule) {
    init {
        if (rule.resize != SHORTER_SIDE_CENTER_CROP && rule.resize != SQUASH) {
            throw CompressError("${BundleManifest.MANIFEST}: image.resize '${rule.resize}' is not one this app knows ($SHORTER_SIDE_CENTER_CROP, $SQUASH)")
        }
        if (rule.interpolation != "bilinear") {
            throw CompressError("${BundleManifest.MANIFEST}: image.interpolation '${rule.interpolation}' is not 'bilinear'")
        }
        if (rule.size < 1) throw CompressError("${BundleManifest.MANIFEST}: image.size ${rule.size} is not a size")
    }

    val size: Int get() = rule.size

    /** The input shape of the image model: `[1, 3, S, S]`. */
    val shape: LongArray get() = longArrayOf(1, 3, size.toLong(), size.toLong())

    /** Interleaved RGB bytes of the S x S picture the model sees. */
    fun modelPicture(image: ArgbImage, orientation: Int = 1): IntArray {
        val upright = image.oriented(orientation)
        val rgb = upright.rgbOnWhite()
        val width = upright.width
        val height = upright.height
        val s = rule.size
        if (rule.resize == SQUASH) return PillowBilinear.resize(rgb, width, height, s, s)
        val newWidth: Int
        val newHeight: Int
        if (width <= height) {
            newWidth = s
            newHeight = (s.toDouble() * height / width).toInt()
        } else {
            newWidth = (s.toDouble() * width / height).toInt()
            newHeight = s
        }
        val resized = PillowBilinear.resize(rgb, width, height, newWidth, newHeight)
        // Python's round(): halves go to the even neighbour
        val left = Math.rint((newWidth - s) / 2.0).toInt()
        val top = Math.rint((newHeight - s) / 2.0).toInt()
        val out = IntArray(s * s * 3)
        for (y in 0 until s) {
            val sy = y + top
            for (x in 0 until s) {
                val sx = x + left
                val o = (y * s + x) * 3
                if (sx in 0 until newWidth && sy in 0 until newHeight) {
                    val p = (sy * newWidth + sx) * 3
                    out[o] = resized[p]; out[o + 1] = resized[p + 1]; out[o + 2] = resized[p + 2]
                } // outside the picture Pillow's crop fills black (0), as here
            }
        }
        return out
    }

    /** The model input: float32 `[1, 3, S, S]`, channel-major, byte / 255. */
    fun pixels(image: ArgbImage, orientation: Int = 1): FloatArray {
        val picture = modelPicture(image, orientation)
        val plane = rule.size * rule.size
        val out = FloatArray(3 * plane)
        for (i in 0 until plane) {
            for (c in 0 until 3) out[c * plane + i] = picture[3 * i + c] / 255.0f
        }
        return out
    }

    companion object {
        const val SHORTER_SIDE_CENTER_CROP = "shorter_side_center_crop"
        const val SQUASH = "squash"
    }
}
