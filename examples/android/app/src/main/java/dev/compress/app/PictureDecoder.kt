package dev.compress.app

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import androidx.exifinterface.media.ExifInterface
import dev.compress.core.ArgbImage
import dev.compress.core.CompressError

/** A decoded picture for the core: ARGB pixels as stored, and the EXIF orientation the core applies. */
class DecodedPicture(val image: ArgbImage, val orientation: Int)

/** Decodes content URIs into what the core's `ImagePreprocessor` takes. */
class PictureDecoder(private val resolver: ContentResolver) {

    /**
     * Decode [uri]. With [minSide] > 0 the decoder may subsample by powers of two as long as the
     * shorter side stays at least [minSide] (for indexing a library quickly); 0 decodes every pixel,
     * the same picture the Python client reads.
     */
    fun decode(uri: Uri, minSide: Int = 0): DecodedPicture {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, bounds) }
            ?: throw CompressError("$uri: cannot be opened")
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw CompressError("$uri: not a picture this phone can decode")
        var sample = 1
        if (minSide > 0) {
            while (minOf(bounds.outWidth, bounds.outHeight) / (sample * 2) >= minSide) sample *= 2
        }
        val options = BitmapFactory.Options().apply {
            inSampleSize = sample
            inPreferredConfig = Bitmap.Config.ARGB_8888
            inScaled = false
        }
        val bitmap = resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw CompressError("$uri: not a picture this phone can decode")
        try {
            val argb = if (bitmap.config == Bitmap.Config.ARGB_8888) bitmap else bitmap.copy(Bitmap.Config.ARGB_8888, false)
            val pixels = IntArray(argb.width * argb.height)
            argb.getPixels(pixels, 0, argb.width, 0, 0, argb.width, argb.height)
            if (argb !== bitmap) argb.recycle()
            return DecodedPicture(ArgbImage(bitmap.width, bitmap.height, pixels), orientation(uri))
        } finally {
            bitmap.recycle()
        }
    }

    private fun orientation(uri: Uri): Int {
        val value = resolver.openInputStream(uri)?.use {
            ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
        } ?: ExifInterface.ORIENTATION_NORMAL
        return if (value in 1..8) value else ExifInterface.ORIENTATION_NORMAL
    }
}
