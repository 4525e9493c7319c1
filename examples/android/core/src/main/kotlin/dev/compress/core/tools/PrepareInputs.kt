package dev.compress.core.tools

import dev.compress.core.ArgbImage
import dev.compress.core.Bundle
import dev.compress.core.CompressError
import dev.compress.core.Golden
import dev.compress.core.JsonFields
import com.google.gson.GsonBuilder
import com.google.gson.JsonArray
import com.google.gson.JsonObject
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import javax.imageio.ImageIO
import kotlin.system.exitProcess

/**
 * The core's decisions, from the command line, for checking them against another client:
 *
 *     prepare  BUNDLE REQUEST.json OUT/   token ids (OUT/ids.i64) and pixel tensors (OUT/pixels.f32)
 *     classify BUNDLE REQUEST.json OUT.json  top-k of image embeddings against label sets
 *
 * A prepare request: `{"texts": [{"text": "...", "lang": "en"}], "pictures": [{"file": "a.png",
 * "orientation": 1}, {"argb": "b.argb", "width": 40, "height": 30, "orientation": 6}]}`; a raw
 * `argb` file holds 4 bytes per pixel, A R G B, row-major (what `Bitmap.getPixels` gives).
 * Picture files are decoded with javax.imageio, which is exact for 8-bit RGB and RGBA PNG (grey
 * PNGs go through a linear grey colour space there, and JPEG decoders differ): hand other
 * pictures over as `argb` dumps. Paths are relative to the request file. `ids.i64` is `[texts, max_length]` little-endian
 * int64 and `pixels.f32` `[pictures, 3, S, S]` little-endian float32.
 *
 * A classify request: `{"embeddings": "e.f32", "label_sets": [{"set": "demo-shape", "lang": "en"}],
 * "top": 5}`, `e.f32` holding `[N, embed_dim]` little-endian float32; OUT.json maps
 * `<set>.<lang>` to one ranked list per row.
 */
object PrepareInputs {
    @JvmStatic
    fun main(args: Array<String>) {
        if (args.size != 4 || args[0] !in setOf("prepare", "classify")) {
            System.err.println("usage: PrepareInputs prepare|classify BUNDLE REQUEST.json OUT")
            exitProcess(64)
        }
        try {
            val bundle = Bundle.open(File(args[1]))
            val requestFile = File(args[2])
            val request = JsonFields.read(requestFile)
            if (args[0] == "prepare") prepare(bundle, request, requestFile.absoluteFile.parentFile, File(args[3]))
            else classify(bundle, request, requestFile.absoluteFile.parentFile, File(args[3]))
        } catch (e: CompressError) {
            System.err.println("error: ${e.message}")
            exitProcess(2)
        }
    }

    private fun prepare(bundle: Bundle, request: JsonFields, base: File, out: File) {
        out.mkdirs()
        val tokenizer = bundle.tokenizer()
        val preprocessor = bundle.preprocessor()
        val texts = if (request.has("texts")) request.objects("texts") else emptyList()
        val ids = ByteBuffer.allocate(texts.size * bundle.manifest.text.maxLength * 8).order(ByteOrder.LITTLE_ENDIAN)
        for (text in texts) tokenizer.encode(text.string("text")).forEach { ids.putLong(it) }
        File(out, "ids.i64").writeBytes(ids.array())
        val pictures = if (request.has("pictures")) request.objects("pictures") else emptyList()
        val plane = 3 * preprocessor.size * preprocessor.size
        val pixels = ByteBuffer.allocate(pictures.size * plane * 4).order(ByteOrder.LITTLE_ENDIAN)
        for (picture in pictures) {
            val orientation = if (picture.has("orientation")) picture.int("orientation") else 1
            preprocessor.pixels(decode(picture, base), orientation).forEach { pixels.putFloat(it) }
        }
        File(out, "pixels.f32").writeBytes(pixels.array())
        val summary = JsonObject().apply {
            addProperty("texts", texts.size)
            addProperty("max_length", bundle.manifest.text.maxLength)
            addProperty("pictures", pictures.size)
            addProperty("size", preprocessor.size)
        }
        File(out, "prepared.json").writeText(summary.toString())
    }

    private fun decode(picture: JsonFields, base: File): ArgbImage {
        if (picture.has("argb")) {
            val file = File(base, picture.string("argb"))
            val width = picture.int("width")
            val height = picture.int("height")
            val bytes = file.readBytes()
            if (bytes.size != width * height * 4) throw CompressError("$file: ${bytes.size} bytes, a ${width}x$height ARGB picture has ${width * height * 4}")
            val ints = ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN).asIntBuffer()
            return ArgbImage(width, height, IntArray(width * height).also { ints.get(it) })
        }
        val file = File(base, picture.string("file"))
        val image = ImageIO.read(file) ?: throw CompressError("$file: not a picture this JVM can decode")
        val argb = image.getRGB(0, 0, image.width, image.height, null, 0, image.width)
        return ArgbImage(image.width, image.height, argb)
    }

    private fun classify(bundle: Bundle, request: JsonFields, base: File, out: File) {
        val dim = bundle.manifest.embedDim
        val embeddings = Golden.readFloats(File(base, request.string("embeddings")))
        if (embeddings.size % dim != 0) throw CompressError("${request.string("embeddings")}: not rows of $dim floats")
        val rows = embeddings.size / dim
        val top = if (request.has("top")) request.int("top") else 5
        val result = JsonObject()
        for (entry in request.objects("label_sets")) {
            val set = entry.string("set")
            val lang = entry.string("lang")
            val classifier = bundle.classifier(set, lang)
            val ranked = JsonArray()
            for (r in 0 until rows) {
                val row = embeddings.copyOfRange(r * dim, (r + 1) * dim)
                ranked.add(JsonArray().apply {
                    classifier.classify(row, top).forEach { p ->
                        add(JsonObject().apply {
                            addProperty("index", p.index)
                            addProperty("class", p.className)
                            addProperty("probability", p.probability)
                            addProperty("cosine", p.cosine)
                        })
                    }
                })
            }
            result.add("$set.$lang", ranked)
        }
        out.absoluteFile.parentFile?.mkdirs()
        out.writeText(GsonBuilder().disableHtmlEscaping().create().toJson(result))
    }
}
