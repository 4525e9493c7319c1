package dev.compress.app

import android.content.Context
import android.content.res.AssetManager
import dev.compress.core.Bundle
import dev.compress.core.BundleManifest
import dev.compress.core.CompressError
import java.io.File
import java.io.IOException

/**
 * Where the app finds its bundle, in this order:
 * 1. `<external files dir>/bundle`, pushed with
 *    `adb push bundle /sdcard/Android/data/dev.compress.app/files/`;
 * 2. `<files dir>/bundle`, copied there from the APK's `assets/bundle` (the Gradle task
 *    `copy<Variant>CompressBundle` puts it there) whenever the APK's manifest.json differs from the copy's.
 * Whichever is used is verified (sha256 of every file, paths, schema version) before use.
 */
class BundleStore(private val context: Context) {

    sealed interface Result {
        data class Ready(val bundle: Bundle, val source: String) : Result
        data class Refused(val reason: String) : Result
    }

    fun open(): Result {
        val pushed = context.getExternalFilesDir(null)?.resolve(FOLDER)
        return try {
            when {
                pushed != null && File(pushed, BundleManifest.MANIFEST).isFile -> Result.Ready(Bundle.open(pushed), "adb: $pushed")
                hasAssetBundle() -> Result.Ready(Bundle.open(installFromAssets()), "APK assets")
                else -> Result.Refused(
                    "No bundle: build with -PcompressBundle=/path/to/bundle, or adb push the bundle folder to " +
                        "${pushed ?: "/sdcard/Android/data/${context.packageName}/files"}/",
                )
            }
        } catch (e: CompressError) {
            Result.Refused(e.message ?: e.toString())
        } catch (e: IOException) {
            Result.Refused("The bundle could not be copied out of the APK: ${e.message}")
        }
    }

    private fun hasAssetBundle(): Boolean = try {
        context.assets.open("$FOLDER/${BundleManifest.MANIFEST}").close()
        true
    } catch (e: IOException) {
        false
    }

    /** Copy `assets/bundle` to `<files dir>/bundle` unless the copy there has the same manifest. */
    private fun installFromAssets(): File {
        val target = File(context.filesDir, FOLDER)
        val packaged = context.assets.open("$FOLDER/${BundleManifest.MANIFEST}").use { it.readBytes() }
        val installed = File(target, BundleManifest.MANIFEST)
        if (installed.isFile && installed.readBytes().contentEquals(packaged)) return target
        val staging = File(context.filesDir, "$FOLDER.partial")
        staging.deleteRecursively()
        copyAssets(context.assets, FOLDER, staging)
        target.deleteRecursively()
        if (!staging.renameTo(target)) throw IOException("cannot move $staging to $target")
        return target
    }

    private fun copyAssets(assets: AssetManager, path: String, into: File) {
        val children = assets.list(path).orEmpty()
        if (children.isEmpty()) {
            into.parentFile?.mkdirs()
            assets.open(path).use { input -> into.outputStream().use { input.copyTo(it, 1 shl 16) } }
            return
        }
        into.mkdirs()
        for (child in children) copyAssets(assets, "$path/$child", File(into, child))
    }

    companion object {
        const val FOLDER = "bundle"
    }
}
