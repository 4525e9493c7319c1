package dev.compress.app

import android.os.SystemClock
import dev.compress.core.Bundle
import dev.compress.core.Classifier
import dev.compress.core.CompressError
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/** An embedding and the milliseconds the model took to compute it. */
class Timed(val embedding: FloatArray, val millis: Double)

/**
 * The bundle's ExecuTorch image and text encoders in one precision (`fp32` or `int8`), loaded with
 * `Module.load` from the verified bundle folder. Each call returns an L2-normalised embedding.
 * Not thread-safe: callers use one thread per instance (the view model's model dispatcher).
 */
class Encoders(private val bundle: Bundle, val precision: String) : AutoCloseable {
    private val manifest = bundle.manifest
    val imageFile = manifest.model(TARGET, "image", precision).file
    val textFile = manifest.model(TARGET, "text", precision).file
    private val image: Module = Module.load(bundle.file(imageFile).absolutePath)
    private val text: Module = Module.load(bundle.file(textFile).absolutePath)
    private val imageShape = longArrayOf(1, 3, manifest.image.size.toLong(), manifest.image.size.toLong())
    private val textShape = longArrayOf(1, manifest.text.maxLength.toLong())

    /** [pixels] is the core's `ImagePreprocessor.pixels` output, `[1, 3, S, S]` float32. */
    fun embedImage(pixels: FloatArray): Timed = run(image, Tensor.fromBlob(pixels, imageShape))

    /** [ids] is the core's `UnigramTokenizer.encode` output, `[1, max_length]` int64. */
    fun embedText(ids: LongArray): Timed = run(text, Tensor.fromBlob(ids, textShape))

    private fun run(module: Module, input: Tensor): Timed {
        val start = SystemClock.elapsedRealtimeNanos()
        val outputs = module.forward(EValue.from(input))
        val millis = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        if (outputs.isEmpty() || !outputs[0].isTensor) throw CompressError("a model of ${bundle.folder} returned no tensor")
        val values = outputs[0].toTensor().dataAsFloatArray
        if (values.size != manifest.embedDim) {
            throw CompressError("a model of ${bundle.folder} returned ${values.size} values, manifest.json says embed_dim ${manifest.embedDim}")
        }
        return Timed(Classifier.normalized(values), millis)
    }

    override fun close() {
        image.destroy()
        text.destroy()
    }

    companion object {
        const val TARGET = "executorch"
    }
}
