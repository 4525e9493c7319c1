package dev.compress.core

import java.io.File
import kotlin.math.exp
import kotlin.math.sqrt

/** `labels/<set>.<lang>.json`: class names, prompt templates and one L2-normalised row per class. */
class LabelSet(val classnames: List<String>, val templates: List<String>, val embedDim: Int, val embeddings: FloatArray) {
    val size: Int get() = classnames.size

    companion object {
        fun read(file: File, embedDim: Int): LabelSet {
            val json = JsonFields.read(file)
            val classnames = json.strings("classnames")
            val templates = if (json.has("templates")) json.strings("templates") else emptyList()
            val (width, values) = json.matrix("embeddings")
            val rows = if (width == 0) 0 else values.size / width
            if (rows != classnames.size) throw CompressError("$file: ${classnames.size} class names but $rows embedding rows")
            if (rows == 0) throw CompressError("$file: no classes")
            if (width != embedDim) throw CompressError("$file: embeddings of width $width, ${BundleManifest.MANIFEST} says embed_dim $embedDim")
            return LabelSet(classnames, templates, width, values)
        }
    }
}

/** One ranked class: its index in the label set, name, softmax probability and cosine. */
data class Prediction(val index: Int, val className: String, val probability: Double, val cosine: Float)

/** Zero-shot classification against a label set: cosine, softmax of `logit_scale` x cosine, top-k. */
class Classifier(val labels: LabelSet, private val logitScale: Double) {

    /** Cosine of [embedding] to every class (both sides are L2-normalised, so a dot product). */
    fun cosines(embedding: FloatArray): FloatArray {
        if (embedding.size != labels.embedDim) {
            throw CompressError("an image embedding of width ${embedding.size} cannot be scored against classes of width ${labels.embedDim}")
        }
        val d = labels.embedDim
        return FloatArray(labels.size) { row -> dot(labels.embeddings, row * d, embedding, d) }
    }

    /**
     * The [top] most probable classes; equal probabilities keep the lower class index first.
     * Cosines are float32 (as the models' outputs are), the softmax runs in double precision.
     */
    fun classify(embedding: FloatArray, top: Int = 5): List<Prediction> {
        val cosine = cosines(embedding)
        val logits = DoubleArray(cosine.size) { logitScale * cosine[it] }
        val highest = logits.max()
        val weights = DoubleArray(logits.size) { exp(logits[it] - highest) }
        val total = weights.sum()
        val probability = DoubleArray(weights.size) { weights[it] / total }
        return rankDescending(probability, top).map { Prediction(it, labels.classnames[it], probability[it], cosine[it]) }
    }

    companion object {
        fun dot(matrix: FloatArray, offset: Int, vector: FloatArray, length: Int): Float {
            var sum = 0.0f
            for (i in 0 until length) sum += matrix[offset + i] * vector[i]
            return sum
        }

        fun normalized(vector: FloatArray): FloatArray {
            var sum = 0.0
            for (v in vector) sum += v.toDouble() * v
            val norm = sqrt(sum)
            return if (norm == 0.0) vector.copyOf() else FloatArray(vector.size) { (vector[it] / norm).toFloat() }
        }

        /** Indices of the [top] largest [values], larger first, ties by the lower index. */
        fun rankDescending(values: DoubleArray, top: Int): List<Int> =
            values.indices.sortedWith(compareByDescending<Int> { values[it] }.thenBy { it }).take(maxOf(0, top))
    }
}
