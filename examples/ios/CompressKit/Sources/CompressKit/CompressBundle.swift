import CryptoKit
import Foundation

/// A bundle folder whose manifest was read and whose files were verified, as docs/bundle-format.md
/// asks of every client before anything else: paths stay inside the folder, every listed file is
/// present with its size and sha256, nothing unlisted and no symbolic link is there.
///
/// (`Bundle` in the Kotlin core; renamed here so that it does not hide `Foundation.Bundle`.)
public final class CompressBundle {
    public let folder: URL
    public let manifest: BundleManifest

    private init(folder: URL, manifest: BundleManifest) {
        self.folder = folder
        self.manifest = manifest
    }

    /// The file at a manifest path (already checked to stay inside the bundle).
    public func file(_ relative: String) -> URL {
        folder.appendingPathComponent(relative)
    }

    public func tokenizer() throws -> UnigramTokenizer {
        try UnigramTokenizer.read(file(manifest.text.tokenizerJson), rule: manifest.text)
    }

    public func preprocessor() throws -> ImagePreprocessor {
        try ImagePreprocessor(rule: manifest.image)
    }

    public func labelSet(set: String, lang: String) throws -> LabelSet {
        try LabelSet.read(file(manifest.labelEntry(set: set, lang: lang).file), embedDim: manifest.embedDim)
    }

    public func classifier(set: String, lang: String) throws -> Classifier {
        try Classifier(labels: labelSet(set: set, lang: lang), logitScale: manifest.logitScale)
    }

    public func golden() throws -> Golden {
        guard let path = manifest.golden else {
            throw CompressError("\(file(BundleManifest.manifestFile).path): names no golden file")
        }
        return try Golden.read(file(path), bundle: self)
    }

    /// Open and verify `folder`; with `verifyFiles` false only the manifest and its paths are checked.
    public static func open(_ folder: URL, verifyFiles: Bool = true) throws -> CompressBundle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CompressError("\(folder.path): no such bundle folder")
        }
        let manifestFile = folder.appendingPathComponent(BundleManifest.manifestFile)
        guard FileManager.default.fileExists(atPath: manifestFile.path) else {
            throw CompressError("\(folder.path): not a bundle (no \(BundleManifest.manifestFile))")
        }
        let manifest = try BundleManifest.parse(JsonFields.read(manifestFile))
        let root = URL(fileURLWithPath: canonicalPath(folder.path), isDirectory: true)
        for entry in manifest.files {
            try checkPath(root: root, source: manifestFile, what: "files[].path", path: entry.path)
        }
        for (what, path) in manifest.referencedPaths() {
            try checkPath(root: root, source: manifestFile, what: what, path: path)
        }
        var listed = [String: FileEntry]()
        for entry in manifest.files {
            listed[entry.path] = entry
        }
        if listed.count != manifest.files.count {
            throw CompressError("\(manifestFile.path): a file is listed twice")
        }
        for (what, path) in manifest.referencedPaths() {
            let folderPrefix = trimmingTrailingSlashes(path) + "/"
            if listed[path] == nil && !listed.keys.contains(where: { $0.hasPrefix(folderPrefix) }) {
                throw CompressError("\(manifestFile.path): \(what) \(path) is not in the file list")
            }
        }
        if verifyFiles {
            try verify(root: root, listed: listed)
        }
        let bundle = CompressBundle(folder: root, manifest: manifest)
        if let golden = manifest.golden {
            try Golden.checkPaths(bundle.file(golden), bundle: bundle)
        }
        return bundle
    }

    /// Refuse a manifest path that is absolute, has a `..` segment or a backslash, or resolves outside `root`.
    public static func checkPath(root: URL, source: URL, what: String, path: String) throws {
        let problem: String?
        if path.isEmpty {
            problem = "is empty"
        } else if path.hasPrefix("/") || path.range(of: "^[A-Za-z]:", options: .regularExpression) != nil {
            problem = "is absolute"
        } else if path.contains("\\") {
            problem = "contains a backslash"
        } else if path.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." }) {
            problem = "contains a '..' segment"
        } else {
            let resolved = canonicalPath(root.path + "/" + path)
            problem = resolved == root.path || resolved.hasPrefix(root.path + "/") ? nil : "resolves outside the bundle folder"
        }
        if let problem {
            throw CompressError("\(source.path): \(what) '\(path)' \(problem); the bundle is refused")
        }
    }

    /// `path` with every symbolic link of its existing part resolved (as Java's `canonicalPath`):
    /// the longest existing prefix goes through `realpath`, the rest is appended as written.
    static func canonicalPath(_ path: String) -> String {
        var head = path
        var tail = [String]()
        while true {
            if let resolved = realpath(head, nil) {
                defer { free(resolved) }
                let base = String(cString: resolved)
                if tail.isEmpty { return base }
                return (base == "/" ? "" : base) + "/" + tail.reversed().joined(separator: "/")
            }
            let url = URL(fileURLWithPath: head)
            let parent = url.deletingLastPathComponent().path
            if parent == head || parent.isEmpty { return path }
            tail.append(url.lastPathComponent)
            head = parent
        }
    }

    private static func trimmingTrailingSlashes(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.hasSuffix("/") {
            trimmed = trimmed.dropLast()
        }
        return String(trimmed)
    }

    private static func verify(root: URL, listed: [String: FileEntry]) throws {
        let present = try presentFiles(root)
        if let link = present.first(where: { $0.isLink }) {
            throw CompressError("\(root.appendingPathComponent(link.relative).path): a symbolic link; a bundle holds plain files only")
        }
        let presentPaths = Set(present.map(\.relative))
        for path in listed.keys.sorted() {
            guard let entry = listed[path] else { continue }
            let file = root.appendingPathComponent(path)
            if !presentPaths.contains(path) {
                throw CompressError("\(file.path): missing (listed in \(BundleManifest.manifestFile))")
            }
            let size = try fileSize(file)
            if size != entry.bytes {
                throw CompressError("\(file.path): altered (\(size) bytes, \(BundleManifest.manifestFile) says \(entry.bytes))")
            }
            if try sha256(file) != entry.sha256.lowercased() {
                throw CompressError("\(file.path): altered (sha256 differs from \(BundleManifest.manifestFile))")
            }
        }
        let extra = presentPaths.subtracting(listed.keys).subtracting([BundleManifest.manifestFile]).sorted()
        if let first = extra.first {
            let more = extra.count > 1 ? " (and \(extra.count - 1) more)" : ""
            throw CompressError("\(root.appendingPathComponent(first).path): unknown file, not listed in \(BundleManifest.manifestFile)\(more)")
        }
    }

    /// ('/'-separated relative path, is a link) of every file and link under `root`, links not followed.
    private static func presentFiles(_ root: URL) throws -> [(relative: String, isLink: Bool)] {
        let manager = FileManager.default
        var found = [(relative: String, isLink: Bool)]()
        func walk(_ directory: String, _ prefix: String) throws {
            let names: [String]
            do {
                names = try manager.contentsOfDirectory(atPath: directory).sorted()
            } catch {
                throw CompressError("\(directory): cannot be listed (\(error.localizedDescription))")
            }
            for name in names {
                let path = directory + "/" + name
                let relative = prefix.isEmpty ? name : prefix + "/" + name
                // attributesOfItem does not follow a final symbolic link (it is lstat)
                let type = try manager.attributesOfItem(atPath: path)[.type] as? FileAttributeType
                if type == .typeSymbolicLink {
                    found.append((relative, true))
                } else if type == .typeDirectory {
                    try walk(path, relative)
                } else {
                    found.append((relative, false))
                }
            }
        }
        try walk(root.path, "")
        return found
    }

    private static func fileSize(_ url: URL) throws -> Int64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        guard let size = attributes[.size] as? NSNumber else {
            throw CompressError("\(url.path): cannot read its size")
        }
        return size.int64Value
    }

    /// The lowercase hex sha256 of a file, read in 1 MiB chunks.
    public static func sha256(_ url: URL) throws -> String {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw CompressError("\(url.path): cannot be read (\(error.localizedDescription))")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data = try autoreleasepool {
                try handle.read(upToCount: 1 << 20) ?? Data()
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
