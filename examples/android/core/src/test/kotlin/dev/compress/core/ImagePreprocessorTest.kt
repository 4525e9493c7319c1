package dev.compress.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import javax.imageio.ImageIO
import kotlin.math.abs

class ImagePreprocessorTest {
    private val bundle = TestBundle.bundle

    @Test
    fun goldenPicturesGiveTheGoldenPixelsWithinOneStep() {
        val golden = bundle.golden()
        val preprocessor = bundle.preprocessor()
        assertTrue("a golden picture that needs resizing", golden.images.size >= 2)
        for (image in golden.images) {
            val decoded = ImageIO.read(bundle.file(image.file))
            val argb = ArgbImage(decoded.width, decoded.height, decoded.getRGB(0, 0, decoded.width, decoded.height, null, 0, decoded.width))
            val ours = preprocessor.pixels(argb)
            val expected = golden.pixels(image)
            assertEquals(image.inputShape.fold(1) { a, b -> a * b }, expected.size)
            assertEquals(expected.size, ours.size)
            val worst = expected.indices.maxOf { abs(expected[it] - ours[it]) }
            assertTrue("${image.file}: worst pixel difference $worst", worst <= 1.0f / 255 + 1e-6f)
        }
    }

    @Test
    fun orientationsTurnAndMirrorLikePillow() {
        // 3 x 2 picture, pixel value = its index:  0 1 2 / 3 4 5
        val image = ArgbImage(3, 2, IntArray(6) { it })
        val expected = mapOf(
            1 to (3 to intArrayOf(0, 1, 2, 3, 4, 5)),
            2 to (3 to intArrayOf(2, 1, 0, 5, 4, 3)),
            3 to (3 to intArrayOf(5, 4, 3, 2, 1, 0)),
            4 to (3 to intArrayOf(3, 4, 5, 0, 1, 2)),
            5 to (2 to intArrayOf(0, 3, 1, 4, 2, 5)),
            6 to (2 to intArrayOf(3, 0, 4, 1, 5, 2)),
            7 to (2 to intArrayOf(5, 2, 4, 1, 3, 0)),
            8 to (2 to intArrayOf(2, 5, 1, 4, 0, 3)),
        )
        for ((orientation, want) in expected) {
            val turned = image.oriented(orientation)
            assertEquals("width for orientation $orientation", want.first, turned.width)
            assertArrayEquals("pixels for orientation $orientation", want.second, turned.pixels)
        }
        assertTrue(TestBundle.refusal { image.oriented(9) }.contains("orientation 9"))
    }

    @Test
    fun transparencyIsCompositedOnWhite() {
        val image = ArgbImage(3, 1, intArrayOf(0x00123456, 0x80FF0000.toInt(), 0xFF102030.toInt()))
        assertArrayEquals(intArrayOf(255, 255, 255, 255, 127, 127, 0x10, 0x20, 0x30), image.rgbOnWhite())
    }

    @Test
    fun aPictureOfTheModelSizeIsOnlyScaled() {
        val size = bundle.manifest.image.size
        val pixels = IntArray(size * size) { (0xFF shl 24) or (it % 256 shl 16) or ((it / 7) % 256 shl 8) or 7 }
        val out = bundle.preprocessor().pixels(ArgbImage(size, size, pixels))
        val plane = size * size
        for (i in 0 until plane) {
            assertEquals(((pixels[i] shr 16) and 0xff) / 255.0f, out[i])
            assertEquals(((pixels[i] shr 8) and 0xff) / 255.0f, out[plane + i])
            assertEquals(7 / 255.0f, out[2 * plane + i])
        }
    }

    @Test
    fun aFlatPictureStaysFlatAtAnySize() {
        val preprocessor = bundle.preprocessor()
        for ((w, h) in listOf(1 to 1, 5 to 300, 301 to 17, 1000 to 999)) {
            val out = preprocessor.pixels(ArgbImage(w, h, IntArray(w * h) { 0xFF4080C0.toInt() }))
            val plane = preprocessor.size * preprocessor.size
            for (i in 0 until plane) {
                assertEquals(0x40 / 255.0f, out[i])
                assertEquals(0x80 / 255.0f, out[plane + i])
                assertEquals(0xC0 / 255.0f, out[2 * plane + i])
            }
        }
    }

    @Test
    fun badPicturesAndRulesAreRefused() {
        assertTrue(TestBundle.refusal { ArgbImage(2, 2, IntArray(3)) }.contains("needs 4 pixels"))
        assertTrue(TestBundle.refusal { ArgbImage(0, 2, IntArray(0)) }.contains("0x2"))
        val rule = bundle.manifest.image.copy(resize = "letterbox")
        assertTrue(TestBundle.refusal { ImagePreprocessor(rule) }.contains("letterbox"))
    }
}
