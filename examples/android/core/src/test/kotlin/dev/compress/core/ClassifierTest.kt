package dev.compress.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class ClassifierTest {
    private val bundle = TestBundle.bundle

    @Test
    fun goldenTop5ForEveryLabelSetAndLanguage() {
        val golden = bundle.golden()
        val expectedKeys = bundle.manifest.labels.map { "${it.set}.${it.lang}" }.toSet()
        for (image in golden.images) {
            assertEquals(expectedKeys, image.top5.keys)
            for ((key, expected) in image.top5) {
                val set = key.substringBeforeLast('.')
                val lang = key.substringAfterLast('.')
                val ours = bundle.classifier(set, lang).classify(image.embedding, expected.size)
                assertEquals("top-5 of ${image.file} for $key", expected.map { it.index }, ours.map { it.index })
                for ((want, got) in expected.zip(ours)) {
                    assertEquals(want.className, got.className)
                    assertEquals(want.probability, got.probability, 1e-5)
                    assertEquals(want.cosine, got.cosine.toDouble(), 1e-5)
                }
            }
        }
    }

    @Test
    fun probabilitiesAreASoftmaxOfScaledCosines() {
        val labels = LabelSet(listOf("a", "b", "c"), emptyList(), 2, floatArrayOf(1f, 0f, 0f, 1f, -1f, 0f))
        val ranked = Classifier(labels, 10.0).classify(floatArrayOf(0.6f, 0.8f), 3)
        assertEquals(listOf(1, 0, 2), ranked.map { it.index })
        val weights = listOf(8.0, 6.0, -6.0).map { Math.exp(it) }
        assertEquals(weights[0] / weights.sum(), ranked[0].probability, 1e-6)
        assertEquals(0.8f, ranked[0].cosine, 1e-7f)
        assertEquals(1.0, ranked.sumOf { it.probability }, 1e-9)
    }

    @Test
    fun tiesGoToTheLowerClassIndex() {
        val labels = LabelSet(listOf("x", "y", "z", "w"), emptyList(), 2, floatArrayOf(0f, 1f, 1f, 0f, 0f, 1f, 1f, 0f))
        val ranked = Classifier(labels, 100.0).classify(floatArrayOf(1f, 0f), 4)
        assertEquals(listOf(1, 3, 0, 2), ranked.map { it.index })
    }

    @Test
    fun anEmbeddingOfAnotherWidthIsRefused() {
        val classifier = bundle.classifier(bundle.manifest.labels[0].set, bundle.manifest.labels[0].lang)
        assertTrue(TestBundle.refusal { classifier.classify(FloatArray(3)) }.contains("width 3"))
    }

    @Test
    fun anUnknownLabelSetNamesTheOnesThereAre() {
        val message = TestBundle.refusal { bundle.classifier("no-such-set", "en") }
        assertTrue(message, message.contains("no-such-set") && message.contains(bundle.manifest.labels[0].set))
    }
}
