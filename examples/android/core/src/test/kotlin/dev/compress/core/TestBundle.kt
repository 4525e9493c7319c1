package dev.compress.core

import com.google.gson.GsonBuilder
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import java.io.File
import java.nio.file.Files

/** The bundle under test (`-Dcompress.bundle=DIR` or `COMPRESS_BUNDLE`), and tampered copies of it. */
object TestBundle {
    val folder: File by lazy {
        val path = System.getProperty("compress.bundle") ?: System.getenv("COMPRESS_BUNDLE")
            ?: error("no bundle to test: pass -Dcompress.bundle=DIR (jvm-test.sh test DIR)")
        File(path).also { require(File(it, BundleManifest.MANIFEST).isFile) { "$it: no manifest.json" } }
    }

    val bundle: Bundle by lazy { Bundle.open(folder) }

    /** A fresh copy of the bundle in a temporary folder. */
    fun copy(): File {
        val target = Files.createTempDirectory("bundle-copy").toFile()
        folder.copyRecursively(target, overwrite = true)
        return target
    }

    fun readManifest(copy: File): JsonObject = JsonParser.parseString(File(copy, BundleManifest.MANIFEST).readText()).asJsonObject

    fun writeManifest(copy: File, manifest: JsonObject) {
        File(copy, BundleManifest.MANIFEST).writeText(GsonBuilder().disableHtmlEscaping().setPrettyPrinting().create().toJson(manifest))
    }

    /** After [path] in [copy] was rewritten on purpose, list its new size and sha256 in the manifest. */
    fun relist(copy: File, path: String) {
        val manifest = readManifest(copy)
        val file = File(copy, path)
        for (entry in manifest.getAsJsonArray("files")) {
            val item = entry.asJsonObject
            if (item.get("path").asString == path) {
                item.addProperty("sha256", Bundle.sha256(file))
                item.addProperty("bytes", file.length())
            }
        }
        writeManifest(copy, manifest)
    }

    /** The message of the [CompressError] that [block] must throw. */
    fun refusal(block: () -> Unit): String {
        try {
            block()
        } catch (e: CompressError) {
            return e.message ?: ""
        }
        throw AssertionError("expected a CompressError, nothing was refused")
    }
}
