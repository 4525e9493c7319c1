package dev.compress.core

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** A golden text: its exact model input row and expected embeddings. */
data class GoldenText(val lang: String, val text: String, val ids: LongArray, val embedding: FloatArray, val embeddingInt8: FloatArray?)

/** An expected top-5 entry of the golden picture for one label set and language. */
data class GoldenRank(val index: Int, val className: String, val probability: Double, val cosine: Double)

/** A golden picture: its file, exact pixel tensor, expected embeddings and top-5 per `<set>.<lang>`. */
data class GoldenImage(
    val file: String,
    val pixelsFile: String,
    val inputShape: List<Int>,
    val embedding: FloatArray,
    val embeddingInt8: FloatArray?,
    val top5: Map<String, List<GoldenRank>>,
)

/** `golden.json` of a bundle: the exact inputs and outputs every client proves itself against. */
class Golden(val texts: List<GoldenText>, val images: List<GoldenImage>, private val bundle: Bundle) {

    /** The exact model input of [image]: little-endian float32, NCHW. */
    fun pixels(image: GoldenImage): FloatArray = readFloats(bundle.file(image.pixelsFile))

    companion object {
        const val FORMAT = "compress-golden"
        const val VERSION = 2

        private fun header(file: File): JsonFields {
            val json = JsonFields.read(file)
            if (json.stringOrNull("format") != FORMAT) throw CompressError("$file: format is not '$FORMAT'")
            val version = if (json.has("version")) json.int("version") else null
            if (version != VERSION) throw CompressError("$file: golden version ${version ?: "missing"} is not supported (this app reads $VERSION)")
            return json
        }

        /** Refuse golden paths that leave the bundle, as for the manifest's own paths. */
        fun checkPaths(file: File, bundle: Bundle) {
            val json = header(file)
            for (image in json.objects("images")) {
                Bundle.checkPath(bundle.folder, file, "images[].file", image.string("file"))
                Bundle.checkPath(bundle.folder, file, "images[].pixels", image.string("pixels"))
            }
        }

        fun read(file: File, bundle: Bundle): Golden {
            val json = header(file)
            val texts = json.objects("texts").map {
                GoldenText(
                    lang = it.string("lang"),
                    text = it.string("text"),
                    ids = it.ints("ids").map(Int::toLong).toLongArray(),
                    embedding = it.floats("embedding"),
                    embeddingInt8 = if (it.has("embedding_int8")) it.floats("embedding_int8") else null,
                )
            }
            val images = json.objects("images").map { image ->
                val ranks = image.obj("top5")
                GoldenImage(
                    file = image.string("file"),
                    pixelsFile = image.string("pixels"),
                    inputShape = image.ints("input_shape").toList(),
                    embedding = image.floats("embedding"),
                    embeddingInt8 = if (image.has("embedding_int8")) image.floats("embedding_int8") else null,
                    top5 = ranks.json.keySet().associateWith { key ->
                        ranks.objects(key).map { GoldenRank(it.int("index"), it.string("class"), it.double("probability"), it.double("cosine")) }
                    },
                )
            }
            return Golden(texts, images, bundle)
        }

        fun readFloats(file: File): FloatArray {
            if (!file.isFile) throw CompressError("$file: missing")
            val bytes = file.readBytes()
            if (bytes.size % 4 != 0) throw CompressError("$file: ${bytes.size} bytes is not a whole number of float32 values")
            val buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            return FloatArray(buffer.remaining()).also { buffer.get(it) }
        }
    }
}
