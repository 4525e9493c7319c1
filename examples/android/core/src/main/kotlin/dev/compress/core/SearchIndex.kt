package dev.compress.core

import java.io.DataInputStream
import java.io.DataOutputStream
import java.io.EOFException
import java.io.File
import java.io.IOException

/** A search result: the stored item's key and its cosine to the query. */
data class SearchHit(val key: String, val cosine: Float)

/**
 * Image embeddings of a photo library, keyed by a stable photo key (a content URI, a path), that a
 * text embedding searches by cosine. The index belongs to one embedding space and precision: a
 * file written for another bundle is refused by [load] (an app then starts a fresh index), never
 * mixed in.
 */
class SearchIndex(val embeddingSpace: String, val precision: String, val embedDim: Int) {
    private val keys = ArrayList<String>()
    private val positions = HashMap<String, Int>()
    private var vectors = FloatArray(0)

    val size: Int get() = keys.size

    operator fun contains(key: String): Boolean = key in positions

    fun keys(): List<String> = keys.toList()

    /** Add or replace the embedding of [key]; it is L2-normalised on the way in. */
    fun add(key: String, embedding: FloatArray) {
        if (embedding.size != embedDim) throw CompressError("index of width $embedDim cannot store an embedding of width ${embedding.size} for $key")
        val unit = Classifier.normalized(embedding)
        val at = positions[key]
        if (at != null) {
            unit.copyInto(vectors, at * embedDim)
            return
        }
        if ((keys.size + 1) * embedDim > vectors.size) vectors = vectors.copyOf(maxOf(16, keys.size * 2) * embedDim)
        unit.copyInto(vectors, keys.size * embedDim)
        positions[key] = keys.size
        keys += key
    }

    /** Remove [key]; returns whether it was there. The last item moves into its place. */
    fun remove(key: String): Boolean {
        val at = positions.remove(key) ?: return false
        val last = keys.size - 1
        if (at != last) {
            val moved = keys[last]
            keys[at] = moved
            positions[moved] = at
            vectors.copyInto(vectors, at * embedDim, last * embedDim, (last + 1) * embedDim)
        }
        keys.removeAt(last)
        return true
    }

    /** Keep only the keys in [present] (photos deleted from the library leave the index). */
    fun retainAll(present: Set<String>): Int {
        val gone = keys.filter { it !in present }
        gone.forEach { remove(it) }
        return gone.size
    }

    /** The [top] items closest to [query] by cosine, ties by the key's sort order. */
    fun search(query: FloatArray, top: Int): List<SearchHit> {
        if (query.size != embedDim) throw CompressError("a query of width ${query.size} cannot search an index of width $embedDim")
        val unit = Classifier.normalized(query)
        val scores = FloatArray(keys.size) { Classifier.dot(vectors, it * embedDim, unit, embedDim) }
        return keys.indices.sortedWith(compareByDescending<Int> { scores[it] }.thenBy { keys[it] })
            .take(maxOf(0, top)).map { SearchHit(keys[it], scores[it]) }
    }

    /** Write the index atomically: a temporary file beside [file], then a rename. */
    fun save(file: File) {
        file.absoluteFile.parentFile?.mkdirs()
        val temporary = File(file.absolutePath + ".tmp")
        DataOutputStream(temporary.outputStream().buffered()).use { out ->
            out.writeUTF(MAGIC)
            out.writeInt(VERSION)
            out.writeUTF(embeddingSpace)
            out.writeUTF(precision)
            out.writeInt(embedDim)
            out.writeInt(keys.size)
            for ((i, key) in keys.withIndex()) {
                out.writeUTF(key)
                for (j in 0 until embedDim) out.writeFloat(vectors[i * embedDim + j])
            }
        }
        if (!temporary.renameTo(file)) {
            file.delete()
            if (!temporary.renameTo(file)) throw CompressError("$file: cannot replace the search index")
        }
    }

    companion object {
        private const val MAGIC = "compress-search-index"
        private const val VERSION = 1

        /** The stored index of [file], or a [CompressError] saying why it cannot be used for this bundle. */
        fun load(file: File, embeddingSpace: String, precision: String): SearchIndex {
            if (!file.isFile) throw CompressError("$file: no search index")
            try {
                DataInputStream(file.inputStream().buffered()).use { input ->
                    if (input.readUTF() != MAGIC) throw CompressError("$file: not a search index")
                    val version = input.readInt()
                    if (version != VERSION) throw CompressError("$file: search index version $version, this app writes $VERSION")
                    val space = input.readUTF()
                    val storedPrecision = input.readUTF()
                    if (space != embeddingSpace) throw CompressError("$file: built for embedding space ${space.take(12)}, the bundle's is ${embeddingSpace.take(12)}")
                    if (storedPrecision != precision) throw CompressError("$file: built with $storedPrecision models, $precision is in use")
                    val dim = input.readInt()
                    val count = input.readInt()
                    if (dim <= 0 || count < 0) throw CompressError("$file: damaged search index header")
                    val index = SearchIndex(space, storedPrecision, dim)
                    val row = FloatArray(dim)
                    repeat(count) {
                        val key = input.readUTF()
                        for (j in 0 until dim) row[j] = input.readFloat()
                        index.add(key, row)
                    }
                    if (input.read() != -1) throw CompressError("$file: trailing bytes after $count entries")
                    return index
                }
            } catch (e: EOFException) {
                throw CompressError("$file: search index ends early (damaged)", e)
            } catch (e: IOException) {
                throw CompressError("$file: cannot read the search index (${e.message})", e)
            }
        }

        /** The stored index when it belongs to this embedding space and precision, else a new empty one. */
        fun loadOrCreate(file: File, embeddingSpace: String, precision: String, embedDim: Int): Pair<SearchIndex, String?> =
            try {
                val index = load(file, embeddingSpace, precision)
                if (index.embedDim != embedDim) SearchIndex(embeddingSpace, precision, embedDim) to "$file: width ${index.embedDim}, the bundle's is $embedDim"
                else index to null
            } catch (e: CompressError) {
                SearchIndex(embeddingSpace, precision, embedDim) to e.message
            }
    }
}
