package dev.compress.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.file.Files

class SearchIndexTest {
    private val space = TestBundle.bundle.manifest.embeddingSpace
    private val dim = TestBundle.bundle.manifest.embedDim

    private fun unit(vararg hot: Pair<Int, Float>): FloatArray = FloatArray(dim).also { v -> hot.forEach { (i, x) -> v[i] = x } }

    private fun sample(): SearchIndex = SearchIndex(space, "fp32", dim).apply {
        add("photo/a", unit(0 to 1f))
        add("photo/b", unit(0 to 1f, 1 to 1f))
        add("photo/c", unit(1 to 1f))
        add("photo/d", unit(2 to 1f))
    }

    private fun tempFile(): File = File(Files.createTempDirectory("index").toFile(), "photos.index")

    @Test
    fun searchRanksByCosineAndBreaksTiesByKey() {
        val index = sample()
        val hits = index.search(unit(0 to 2f), 3)
        assertEquals(listOf("photo/a", "photo/b", "photo/c"), hits.map { it.key })
        assertEquals(1.0f, hits[0].cosine, 1e-6f)
        assertEquals(Math.sqrt(0.5).toFloat(), hits[1].cosine, 1e-6f)
        index.add("photo/e", unit(2 to 5f))
        assertEquals(listOf("photo/d", "photo/e"), index.search(unit(2 to 1f), 2).map { it.key })
    }

    @Test
    fun addReplacesAndRemoveForgets() {
        val index = sample()
        index.add("photo/a", unit(3 to 1f))
        assertEquals(4, index.size)
        assertEquals("photo/a", index.search(unit(3 to 1f), 1)[0].key)
        assertTrue(index.remove("photo/b"))
        assertFalse(index.remove("photo/b"))
        assertFalse("photo/b" in index)
        assertEquals(setOf("photo/a", "photo/c", "photo/d"), index.keys().toSet())
        assertEquals(listOf("photo/c"), index.search(unit(1 to 1f), 1).map { it.key })
        assertEquals(1, index.retainAll(setOf("photo/a", "photo/d")))
        assertEquals(setOf("photo/a", "photo/d"), index.keys().toSet())
    }

    @Test
    fun savedIndexLoadsBackForTheSameBundleAndPrecision() {
        val file = tempFile()
        val index = sample()
        index.save(file)
        val loaded = SearchIndex.load(file, space, "fp32")
        assertEquals(index.keys(), loaded.keys())
        assertEquals(index.search(unit(1 to 1f), 4), loaded.search(unit(1 to 1f), 4))
        val (again, reason) = SearchIndex.loadOrCreate(file, space, "fp32", dim)
        assertNull(reason)
        assertEquals(4, again.size)
    }

    @Test
    fun anIndexOfAnotherEmbeddingSpaceOrPrecisionIsRebuilt() {
        val file = tempFile()
        sample().save(file)
        val other = "0".repeat(64)
        assertTrue(TestBundle.refusal { SearchIndex.load(file, other, "fp32") }.contains("embedding space"))
        assertTrue(TestBundle.refusal { SearchIndex.load(file, space, "int8") }.contains("built with fp32 models, int8 is in use"))
        val (fresh, reason) = SearchIndex.loadOrCreate(file, other, "fp32", dim)
        assertEquals(0, fresh.size)
        assertEquals(other, fresh.embeddingSpace)
        assertNotNull(reason)
    }

    @Test
    fun aDamagedIndexFileIsRefused() {
        val file = tempFile()
        sample().save(file)
        val bytes = file.readBytes()
        file.writeBytes(bytes.copyOf(bytes.size - 5))
        assertTrue(TestBundle.refusal { SearchIndex.load(file, space, "fp32") }.contains("damaged"))
        file.writeText("not an index at all")
        assertTrue(TestBundle.refusal { SearchIndex.load(file, space, "fp32") }.let { it.contains(file.path) })
    }

    @Test
    fun embeddingsOfAnotherWidthAreRefused() {
        val index = sample()
        assertTrue(TestBundle.refusal { index.add("x", FloatArray(dim + 1)) }.contains("width"))
        assertTrue(TestBundle.refusal { index.search(FloatArray(dim - 1), 1) }.contains("width"))
    }
}
