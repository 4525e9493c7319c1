package dev.compress.core

import java.io.File
import java.nio.file.Files
import java.nio.file.LinkOption
import java.nio.file.Path
import java.security.MessageDigest

/**
 * A bundle folder whose manifest was read and whose files were verified, as docs/bundle-format.md
 * asks of every client before anything else: paths stay inside the folder, every listed file is
 * present with its size and sha256, nothing unlisted and no symbolic link is there.
 */
class Bundle private constructor(val folder: File, val manifest: BundleManifest) {

    /** The file at a manifest path (already checked to stay inside the bundle). */
    fun file(relative: String): File = File(folder, relative)

    fun tokenizer(): UnigramTokenizer = UnigramTokenizer.read(file(manifest.text.tokenizerJson), manifest.text)

    fun preprocessor(): ImagePreprocessor = ImagePreprocessor(manifest.image)

    fun labelSet(set: String, lang: String): LabelSet = LabelSet.read(file(manifest.labelEntry(set, lang).file), manifest.embedDim)

    fun classifier(set: String, lang: String): Classifier = Classifier(labelSet(set, lang), manifest.logitScale)

    fun golden(): Golden {
        val path = manifest.golden ?: throw CompressError("${file(BundleManifest.MANIFEST)}: names no golden file")
        return Golden.read(file(path), this)
    }

    companion object {
        /** Open and verify [folder]; with [verifyFiles] false only the manifest and its paths are checked. */
        fun open(folder: File, verifyFiles: Boolean = true): Bundle {
            if (!folder.isDirectory) throw CompressError("$folder: no such bundle folder")
            val manifestFile = File(folder, BundleManifest.MANIFEST)
            if (!manifestFile.isFile) throw CompressError("$folder: not a bundle (no ${BundleManifest.MANIFEST})")
            val manifest = BundleManifest.parse(JsonFields.read(manifestFile))
            val root = folder.canonicalFile
            manifest.files.forEach { checkPath(root, manifestFile, "files[].path", it.path) }
            manifest.referencedPaths().forEach { (what, path) -> checkPath(root, manifestFile, what, path) }
            val listed = manifest.files.associateBy { it.path }
            if (listed.size != manifest.files.size) throw CompressError("$manifestFile: a file is listed twice")
            for ((what, path) in manifest.referencedPaths()) {
                if (path !in listed && listed.keys.none { it.startsWith(path.trimEnd('/') + "/") }) {
                    throw CompressError("$manifestFile: $what $path is not in the file list")
                }
            }
            if (verifyFiles) verifyFiles(root, listed)
            val bundle = Bundle(root, manifest)
            manifest.golden?.let { Golden.checkPaths(bundle.file(it), bundle) }
            return bundle
        }

        /** Refuse a manifest path that is absolute, has a `..` segment or a backslash, or resolves outside [root]. */
        fun checkPath(root: File, source: File, what: String, path: String) {
            val problem = when {
                path.isEmpty() -> "is empty"
                path.startsWith("/") || Regex("^[A-Za-z]:").containsMatchIn(path) -> "is absolute"
                '\\' in path -> "contains a backslash"
                path.split('/').any { it == ".." } -> "contains a '..' segment"
                !File(root, path).canonicalPath.let { it == root.path || it.startsWith(root.path + File.separator) } -> "resolves outside the bundle folder"
                else -> null
            }
            if (problem != null) throw CompressError("$source: $what '$path' $problem; the bundle is refused")
        }

        private fun verifyFiles(root: File, listed: Map<String, FileEntry>) {
            val present = presentFiles(root)
            present.firstOrNull { Files.isSymbolicLink(it.second) }?.let {
                throw CompressError("${it.second}: a symbolic link; a bundle holds plain files only")
            }
            val presentPaths = present.map { it.first }.toSet()
            for ((path, entry) in listed.toSortedMap()) {
                val file = File(root, path)
                if (path !in presentPaths) throw CompressError("$file: missing (listed in ${BundleManifest.MANIFEST})")
                val size = file.length()
                if (size != entry.bytes) throw CompressError("$file: altered ($size bytes, ${BundleManifest.MANIFEST} says ${entry.bytes})")
                if (sha256(file) != entry.sha256.lowercase()) throw CompressError("$file: altered (sha256 differs from ${BundleManifest.MANIFEST})")
            }
            val extra = (presentPaths - listed.keys - BundleManifest.MANIFEST).sorted()
            if (extra.isNotEmpty()) {
                val more = if (extra.size > 1) " (and ${extra.size - 1} more)" else ""
                throw CompressError("${File(root, extra[0])}: unknown file, not listed in ${BundleManifest.MANIFEST}$more")
            }
        }

        /** ('/'-separated relative path, path) of every file and link under [root], links not followed. */
        private fun presentFiles(root: File): List<Pair<String, Path>> {
            val base = root.toPath()
            val found = mutableListOf<Pair<String, Path>>()
            fun walk(dir: Path) {
                Files.newDirectoryStream(dir).use { entries ->
                    for (entry in entries.sorted()) {
                        val relative = base.relativize(entry).joinToString("/")
                        when {
                            Files.isSymbolicLink(entry) -> found += relative to entry
                            Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS) -> walk(entry)
                            else -> found += relative to entry
                        }
                    }
                }
            }
            walk(base)
            return found
        }

        fun sha256(file: File): String {
            val digest = MessageDigest.getInstance("SHA-256")
            file.inputStream().use { input ->
                val buffer = ByteArray(1 shl 16)
                while (true) {
                    val read = input.read(buffer)
                    if (read < 0) break
                    digest.update(buffer, 0, read)
                }
            }
            return digest.digest().joinToString("") { "%02x".format(it) }
        }
    }
}
