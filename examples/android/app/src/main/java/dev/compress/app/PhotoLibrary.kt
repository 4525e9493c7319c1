package dev.compress.app

import android.content.ContentResolver
import android.content.ContentUris
import android.net.Uri
import android.provider.MediaStore

/** One photo of the library; [key] changes when the photo is edited, so an edited photo is re-indexed. */
data class LibraryPhoto(val uri: Uri, val key: String)

/** The device's photo library, through MediaStore. */
class PhotoLibrary(private val resolver: ContentResolver) {

    fun photos(): List<LibraryPhoto> {
        val collection = MediaStore.Images.Media.EXTERNAL_CONTENT_URI
        val columns = arrayOf(MediaStore.Images.Media._ID, MediaStore.Images.Media.DATE_MODIFIED)
        val photos = mutableListOf<LibraryPhoto>()
        resolver.query(collection, columns, null, null, "${MediaStore.Images.Media.DATE_ADDED} DESC")?.use { cursor ->
            val id = cursor.getColumnIndexOrThrow(MediaStore.Images.Media._ID)
            val modified = cursor.getColumnIndexOrThrow(MediaStore.Images.Media.DATE_MODIFIED)
            while (cursor.moveToNext()) {
                val uri = ContentUris.withAppendedId(collection, cursor.getLong(id))
                photos += LibraryPhoto(uri, "$uri@${cursor.getLong(modified)}")
            }
        }
        return photos
    }

    companion object {
        /** The content URI of an index key written by [photos]. */
        fun uriOf(key: String): Uri = Uri.parse(key.substringBeforeLast('@'))
    }
}
