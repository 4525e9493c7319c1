package dev.compress.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File
import java.nio.file.Files

class BundleVerificationTest {
    private fun assertRefused(copy: File, vararg words: String) {
        val message = TestBundle.refusal { Bundle.open(copy) }
        for (word in words) assertTrue("'$word' not in: $message", message.contains(word))
    }

    @Test
    fun theExportedBundleIsAccepted() {
        val manifest = TestBundle.bundle.manifest
        assertEquals(BundleManifest.SCHEMA_VERSION, manifest.schemaVersion)
        assertTrue(manifest.embeddingSpace.matches(Regex("[0-9a-f]{64}")))
        assertTrue(manifest.precisions("executorch").contains("fp32"))
        assertTrue(manifest.languages.containsAll(listOf("en", "zh")))
        assertEquals(listOf(1, manifest.text.maxLength), manifest.model("executorch", "text", "fp32").inputShape)
    }

    @Test
    fun aFlippedByteIsRefused() {
        val copy = TestBundle.copy()
        val model = TestBundle.bundle.manifest.model("executorch", "image", "fp32").file
        val bytes = File(copy, model).readBytes()
        bytes[bytes.size / 2] = (bytes[bytes.size / 2].toInt() xor 0x01).toByte()
        File(copy, model).writeBytes(bytes)
        assertRefused(copy, model, "altered", "sha256")
    }

    @Test
    fun aShortenedFileIsRefused() {
        val copy = TestBundle.copy()
        val labels = TestBundle.bundle.manifest.labels.first().file
        File(copy, labels).appendText(" ")
        assertRefused(copy, labels, "altered", "bytes")
    }

    @Test
    fun anExtraFileIsRefused() {
        val copy = TestBundle.copy()
        File(copy, "labels/extra.json").writeText("{}")
        assertRefused(copy, "labels/extra.json", "not listed")
    }

    @Test
    fun aMissingFileIsRefused() {
        val copy = TestBundle.copy()
        val tokenizer = TestBundle.bundle.manifest.text.tokenizerJson
        File(copy, tokenizer).delete()
        assertRefused(copy, tokenizer, "missing")
    }

    @Test
    fun aSymbolicLinkIsRefused() {
        val copy = TestBundle.copy()
        Files.createSymbolicLink(File(copy, "link.json").toPath(), File(copy, TestBundle.bundle.manifest.text.tokenizerJson).toPath())
        assertRefused(copy, "link.json", "symbolic link")
    }

    @Test
    fun aPathLeavingTheBundleIsRefused() {
        val copy = TestBundle.copy()
        val manifest = TestBundle.readManifest(copy)
        manifest.getAsJsonObject("text").addProperty("tokenizer_json", "../outside/tokenizer.json")
        TestBundle.writeManifest(copy, manifest)
        assertRefused(copy, "text.tokenizer_json", "'..' segment")
    }

    @Test
    fun aListedPathLeavingTheBundleIsRefused() {
        val copy = TestBundle.copy()
        val manifest = TestBundle.readManifest(copy)
        manifest.getAsJsonArray("files")[0].asJsonObject.addProperty("path", "labels/../../secret")
        TestBundle.writeManifest(copy, manifest)
        assertRefused(copy, "files[].path", "'..' segment")
    }

    @Test
    fun absoluteAndBackslashPathsAreRefused() {
        for ((path, reason) in listOf("/etc/passwd" to "is absolute", "labels\\demo.json" to "backslash")) {
            val copy = TestBundle.copy()
            val manifest = TestBundle.readManifest(copy)
            manifest.getAsJsonArray("models")[0].asJsonObject.addProperty("file", path)
            TestBundle.writeManifest(copy, manifest)
            assertRefused(copy, "models[", reason)
        }
    }

    @Test
    fun aSymlinkedFolderResolvingOutsideIsRefused() {
        val copy = TestBundle.copy()
        val outside = Files.createTempDirectory("outside").toFile()
        File(outside, "tokenizer.json").writeText("{}")
        Files.createSymbolicLink(File(copy, "elsewhere").toPath(), outside.toPath())
        val manifest = TestBundle.readManifest(copy)
        manifest.getAsJsonObject("text").addProperty("tokenizer_json", "elsewhere/tokenizer.json")
        TestBundle.writeManifest(copy, manifest)
        assertRefused(copy, "elsewhere/tokenizer.json", "resolves outside the bundle folder")
    }

    @Test
    fun aGoldenPathLeavingTheBundleIsRefused() {
        val copy = TestBundle.copy()
        val golden = File(copy, TestBundle.bundle.manifest.golden!!)
        golden.writeText(golden.readText().replace("\"golden/image_0.pixels.f32\"", "\"../image_0.pixels.f32\""))
        TestBundle.relist(copy, TestBundle.bundle.manifest.golden!!)
        assertRefused(copy, "images[].pixels", "'..' segment")
    }

    @Test
    fun anUnknownSchemaVersionIsRefused() {
        val copy = TestBundle.copy()
        val manifest = TestBundle.readManifest(copy)
        manifest.addProperty("schema_version", 3)
        TestBundle.writeManifest(copy, manifest)
        assertRefused(copy, "manifest.json", "schema_version 3 is not supported")
    }

    @Test
    fun aManifestThatIsNotJsonIsRefused() {
        val copy = TestBundle.copy()
        File(copy, BundleManifest.MANIFEST).writeText("{\"format\": \"compress-bundle\", ")
        assertRefused(copy, "manifest.json", "not valid JSON")
    }

    @Test
    fun aMissingManifestIsRefused() {
        val copy = TestBundle.copy()
        File(copy, BundleManifest.MANIFEST).delete()
        assertRefused(copy, "no manifest.json")
    }
}
