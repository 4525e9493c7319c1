package dev.compress.core

import kotlin.math.ceil

/**
 * Pillow's `Image.resize(..., BILINEAR)` for 8-bit RGB (libImaging/Resample.c): a triangle filter
 * whose support grows with the shrink factor (antialiasing), weights in 22-bit fixed point, one
 * horizontal then one vertical pass, each rounded and clipped to 8 bits. Ported operation by
 * operation so that the bytes equal Pillow's.
 */
object PillowBilinear {
    private const val PRECISION_BITS = 32 - 8 - 2

    private class Coefficients(val ksize: Int, val bounds: IntArray, val weights: IntArray)

    private fun triangle(value: Double): Double {
        val x = if (value < 0.0) -value else value
        return if (x < 1.0) 1.0 - x else 0.0
    }

    private fun coefficients(inSize: Int, outSize: Int): Coefficients {
        val scale = inSize.toDouble() / outSize
        val filterScale = if (scale < 1.0) 1.0 else scale
        val support = 1.0 * filterScale
        val ksize = ceil(support).toInt() * 2 + 1
        val bounds = IntArray(outSize * 2)
        val weights = IntArray(outSize * ksize)
        val k = DoubleArray(ksize)
        for (xx in 0 until outSize) {
            val center = (xx + 0.5) * scale
            val ss = 1.0 / filterScale
            var xmin = (center - support + 0.5).toInt()
            if (xmin < 0) xmin = 0
            var xmax = (center + support + 0.5).toInt()
            if (xmax > inSize) xmax = inSize
            xmax -= xmin
            var ww = 0.0
            for (x in 0 until xmax) {
                val w = triangle((x + xmin - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for (x in 0 until ksize) {
                val normalized = if (x < xmax) (if (ww != 0.0) k[x] / ww else k[x]) else 0.0
                weights[xx * ksize + x] =
                    if (normalized < 0) (-0.5 + normalized * (1 shl PRECISION_BITS)).toInt() else (0.5 + normalized * (1 shl PRECISION_BITS)).toInt()
            }
            bounds[xx * 2] = xmin
            bounds[xx * 2 + 1] = xmax
        }
        return Coefficients(ksize, bounds, weights)
    }

    private fun clip8(value: Int): Int = when {
        value >= (1 shl PRECISION_BITS shl 8) -> 255
        value <= 0 -> 0
        else -> value shr PRECISION_BITS
    }

    /** Resize interleaved RGB bytes [rgb] of [width] x [height] to [outWidth] x [outHeight]. */
    fun resize(rgb: IntArray, width: Int, height: Int, outWidth: Int, outHeight: Int): IntArray {
        if (outWidth == width && outHeight == height) return rgb.copyOf()
        val horizontal = coefficients(width, outWidth)
        val vertical = coefficients(height, outHeight)
        val needHorizontal = outWidth != width
        val needVertical = outHeight != height
        var source = rgb
        var sourceHeight = height
        val firstRow = vertical.bounds[0]
        val lastRow = vertical.bounds[outHeight * 2 - 2] + vertical.bounds[outHeight * 2 - 1]
        val verticalBounds = vertical.bounds.copyOf()
        if (needHorizontal) {
            for (i in 0 until outHeight) verticalBounds[i * 2] -= firstRow
            val rows = lastRow - firstRow
            val out = IntArray(outWidth * rows * 3)
            val half = 1 shl (PRECISION_BITS - 1)
            for (yy in 0 until rows) {
                val rowStart = (yy + firstRow) * width * 3
                for (xx in 0 until outWidth) {
                    val xmin = horizontal.bounds[xx * 2]
                    val xmax = horizontal.bounds[xx * 2 + 1]
                    val kOffset = xx * horizontal.ksize
                    var s0 = half
                    var s1 = half
                    var s2 = half
                    for (x in 0 until xmax) {
                        val w = horizontal.weights[kOffset + x]
                        val p = rowStart + (x + xmin) * 3
                        s0 += source[p] * w
                        s1 += source[p + 1] * w
                        s2 += source[p + 2] * w
                    }
                    val o = (yy * outWidth + xx) * 3
                    out[o] = clip8(s0)
                    out[o + 1] = clip8(s1)
                    out[o + 2] = clip8(s2)
                }
            }
            source = out
            sourceHeight = rows
        }
        if (!needVertical) return source
        val sourceWidth = outWidth
        val out = IntArray(outWidth * outHeight * 3)
        val half = 1 shl (PRECISION_BITS - 1)
        val bounds = if (needHorizontal) verticalBounds else vertical.bounds
        check(sourceHeight >= 1)
        for (yy in 0 until outHeight) {
            val ymin = bounds[yy * 2]
            val ymax = bounds[yy * 2 + 1]
            val kOffset = yy * vertical.ksize
            for (xx in 0 until sourceWidth) {
                var s0 = half
                var s1 = half
                var s2 = half
                for (y in 0 until ymax) {
                    val w = vertical.weights[kOffset + y]
                    val p = ((y + ymin) * sourceWidth + xx) * 3
                    s0 += source[p] * w
                    s1 += source[p + 1] * w
                    s2 += source[p + 2] * w
                }
                val o = (yy * outWidth + xx) * 3
                out[o] = clip8(s0)
                out[o + 1] = clip8(s1)
                out[o + 2] = clip8(s2)
            }
        }
        return out
    }
}
