package dev.compress.app

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import dev.compress.core.ArgbImage
import dev.compress.core.Bundle
import dev.compress.core.Golden
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.BeforeClass
import org.junit.Test
import org.junit.runner.RunWith
import kotlin.math.abs
import kotlin.math.sqrt

/**
 * The golden inputs of the app's bundle through the real `.pte` files on this device:
 * golden ids and the golden picture's exact pixel tensor give embeddings with cosine > 0.999 to
 * golden.json's, in every ExecuTorch precision the bundle has; the core's tokenizer and
 * preprocessing (from the golden PNG as this phone decodes it) reproduce the golden inputs.
 */
@RunWith(AndroidJUnit4::class)
class GoldenEmbeddingTest {

    private fun cosine(a: FloatArray, b: FloatArray): Double {
        var dot = 0.0
        var na = 0.0
        var nb = 0.0
        for (i in a.indices) {
            dot += a[i].toDouble() * b[i]
            na += a[i].toDouble() * a[i]
            nb += b[i].toDouble() * b[i]
        }
        return dot / sqrt(na * nb)
    }

    private fun expected(embedding: FloatArray, int8: FloatArray?, precision: String): FloatArray? =
        if (precision == "fp32") embedding else int8

    @Test
    fun goldenTextsThroughTheTextModel() {
        val tokenizer = bundle.tokenizer()
        for (precision in bundle.manifest.precisions(Encoders.TARGET)) {
            Encoders(bundle, precision).use { encoders ->
                for (text in golden.texts) {
                    assertArrayEquals("ids of '${text.text}'", text.ids, tokenizer.encode(text.text))
                    val want = expected(text.embedding, text.embeddingInt8, precision) ?: continue
                    val got = encoders.embedText(text.ids).embedding
                    val c = cosine(got, want)
                    assertTrue("$precision text '${text.text}': cosine $c", c > MIN_COSINE)
                }
            }
        }
    }

    @Test
    fun goldenPicturesThroughTheImageModel() {
        for (precision in bundle.manifest.precisions(Encoders.TARGET)) {
            Encoders(bundle, precision).use { encoders ->
                for (image in golden.images) {
                    val want = expected(image.embedding, image.embeddingInt8, precision) ?: continue
                    val got = encoders.embedImage(golden.pixels(image)).embedding
                    val c = cosine(got, want)
                    assertTrue("$precision picture ${image.file}: cosine $c", c > MIN_COSINE)
                }
            }
        }
    }

    @Test
    fun goldenPngsDecodedHereGiveTheGoldenPixels() {
        val preprocessor = bundle.preprocessor()
        for (image in golden.images) {
            val bitmap = BitmapFactory.decodeFile(bundle.file(image.file).path, BitmapFactory.Options().apply {
                inPreferredConfig = Bitmap.Config.ARGB_8888
                inScaled = false
            }) ?: run {
                fail("${image.file}: not decoded")
                return
            }
            val pixels = IntArray(bitmap.width * bitmap.height)
            bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
            val ours = preprocessor.pixels(ArgbImage(bitmap.width, bitmap.height, pixels))
            val want = golden.pixels(image)
            assertEquals(want.size, ours.size)
            val worst = want.indices.maxOf { abs(want[it] - ours[it]) }
            assertTrue("${image.file}: worst pixel difference $worst", worst <= 1f / 255 + 1e-6f)
        }
    }

    @Test
    fun goldenTop5FromTheModelsEmbedding() {
        Encoders(bundle, "fp32").use { encoders ->
            for (image in golden.images) {
                val embedding = encoders.embedImage(golden.pixels(image)).embedding
                for ((key, ranks) in image.top5) {
                    val classifier = bundle.classifier(key.substringBeforeLast('.'), key.substringAfterLast('.'))
                    assertEquals("top-1 of ${image.file} for $key", ranks.first().index, classifier.classify(embedding, 1).first().index)
                }
            }
        }
    }

    companion object {
        private const val MIN_COSINE = 0.999
        private lateinit var bundle: Bundle
        private lateinit var golden: Golden

        @JvmStatic
        @BeforeClass
        fun openBundle() {
            val context = InstrumentationRegistry.getInstrumentation().targetContext
            when (val result = BundleStore(context).open()) {
                is BundleStore.Result.Ready -> bundle = result.bundle
                is BundleStore.Result.Refused -> fail("the app's bundle is refused: ${result.reason}")
            }
            golden = bundle.golden()
        }
    }
}
