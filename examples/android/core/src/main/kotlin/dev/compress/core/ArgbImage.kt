package dev.compress.core

/**
 * A decoded picture as Android's `Bitmap.getPixels` hands it over: [width] x [height] ints,
 * row-major, each `0xAARRGGBB`, not yet turned by its EXIF orientation.
 */
class ArgbImage(val width: Int, val height: Int, val pixels: IntArray) {
    init {
        if (width <= 0 || height <= 0) throw CompressError("a picture of ${width}x$height pixels has nothing to show")
        if (pixels.size != width * height) throw CompressError("a ${width}x$height picture needs ${width * height} pixels, got ${pixels.size}")
    }

    operator fun get(x: Int, y: Int): Int = pixels[y * width + x]

    /**
     * The picture as it is meant to be seen for EXIF orientation [orientation] (1..8), the same
     * turns and flips as Pillow's `ImageOps.exif_transpose`.
     */
    fun oriented(orientation: Int): ArgbImage {
        val w = width
        val h = height
        return when (orientation) {
            1 -> this
            2 -> build(w, h) { x, y -> this[w - 1 - x, y] } // mirror left-right
            3 -> build(w, h) { x, y -> this[w - 1 - x, h - 1 - y] } // turn 180
            4 -> build(w, h) { x, y -> this[x, h - 1 - y] } // mirror top-bottom
            5 -> build(h, w) { x, y -> this[y, x] } // transpose
            6 -> build(h, w) { x, y -> this[y, h - 1 - x] } // turn 90 clockwise
            7 -> build(h, w) { x, y -> this[w - 1 - y, h - 1 - x] } // transverse
            8 -> build(h, w) { x, y -> this[w - 1 - y, x] } // turn 90 counter-clockwise
            else -> throw CompressError("EXIF orientation $orientation is not one of 1..8")
        }
    }

    /**
     * Interleaved R, G, B bytes (0..255) of the picture composited on white, with Pillow's
     * `alpha_composite` integer arithmetic (7 extra bits, divisions by 255 rounded).
     */
    fun rgbOnWhite(): IntArray {
        val rgb = IntArray(width * height * 3)
        for (i in pixels.indices) {
            val p = pixels[i]
            val a = p ushr 24
            var r = (p shr 16) and 0xff
            var g = (p shr 8) and 0xff
            var b = p and 0xff
            if (a == 0) {
                r = 255; g = 255; b = 255
            } else if (a != 255) {
                r = overWhite(r, a); g = overWhite(g, a); b = overWhite(b, a)
            }
            rgb[3 * i] = r
            rgb[3 * i + 1] = g
            rgb[3 * i + 2] = b
        }
        return rgb
    }

    companion object {
        private fun overWhite(c: Int, a: Int): Int {
            // Pillow: coef1 = a * 255 * 255 * 128 / (255 * 255) = a * 128 for an opaque white backdrop
            val t = (c * a * 128 + 255 * (255 - a) * 128) + (0x80 shl 7)
            return ((((t ushr 8) + t) ushr 8) ushr 7)
        }

        private inline fun build(w: Int, h: Int, source: (Int, Int) -> Int): ArgbImage {
            val out = IntArray(w * h)
            for (y in 0 until h) for (x in 0 until w) out[y * w + x] = source(x, y)
            return ArgbImage(w, h, out)
        }
    }
}
