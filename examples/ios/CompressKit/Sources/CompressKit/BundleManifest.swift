import Foundation

/// How a picture becomes the image model's input (`image` in manifest.json).
public struct ImageRule: Equatable {
    public let size: Int
    public let mean: [Float]
    public let std: [Float]
    public let resize: String
    public let interpolation: String

    public init(size: Int, mean: [Float], std: [Float], resize: String, interpolation: String) {
        self.size = size
        self.mean = mean
        self.std = std
        self.resize = resize
        self.interpolation = interpolation
    }
}

/// How a text becomes the text model's input (`text` in manifest.json).
public struct TextRule: Equatable {
    public let tokenizer: String
    public let tokenizerJson: String
    public let maxLength: Int
    public let vocabSize: Int
    public let padId: Int
    public let unkId: Int
    public let bosId: Int
    public let eosId: Int
    public let truncation: String

    public init(tokenizer: String, tokenizerJson: String, maxLength: Int, vocabSize: Int, padId: Int, unkId: Int,
                bosId: Int, eosId: Int, truncation: String) {
        self.tokenizer = tokenizer
        self.tokenizerJson = tokenizerJson
        self.maxLength = maxLength
        self.vocabSize = vocabSize
        self.padId = padId
        self.unkId = unkId
        self.bosId = bosId
        self.eosId = eosId
        self.truncation = truncation
    }
}

/// One model file: which target runs it, which tower it is and in what precision.
public struct ModelEntry: Equatable {
    public let target: String
    public let tower: String
    public let precision: String
    public let file: String
    public let inputName: String
    public let inputShape: [Int]
    public let inputDtype: String
    public let outputName: String
}

/// One label set in one language: `labels/<set>.<lang>.json`.
public struct LabelEntry: Equatable {
    public let set: String
    public let lang: String
    public let file: String
    public let classes: Int
}

/// One listed file with the size and sha256 it must have.
public struct FileEntry: Equatable {
    public let path: String
    public let sha256: String
    public let bytes: Int64
}

/// manifest.json of a bundle of `BundleManifest.schemaVersion`; see docs/bundle-format.md.
public struct BundleManifest {
    public static let manifestFile = "manifest.json"
    public static let format = "compress-bundle"
    public static let schemaVersion = 2

    public let schemaVersion: Int
    public let embedDim: Int
    public let languages: [String]
    public let logitScale: Double
    public let embeddingSpace: String
    public let image: ImageRule
    public let text: TextRule
    public let models: [ModelEntry]
    public let labels: [LabelEntry]
    public let files: [FileEntry]
    public let golden: String?
    public let report: String?

    public func model(target: String, tower: String, precision: String) throws -> ModelEntry {
        if let entry = models.first(where: { $0.target == target && $0.tower == tower && $0.precision == precision }) {
            return entry
        }
        var have = [String]()
        for entry in models where entry.target == target && entry.tower == tower && !have.contains(entry.precision) {
            have.append(entry.precision)
        }
        throw CompressError("\(Self.manifestFile): no \(target) \(tower) model in \(precision); the bundle has: "
            + (have.isEmpty ? "none" : have.joined(separator: ", ")))
    }

    /// The precisions in which this bundle has both towers for `target`, in manifest order.
    public func precisions(target: String) -> [String] {
        let image = Set(models.filter { $0.target == target && $0.tower == "image" }.map(\.precision))
        var found = [String]()
        for entry in models where entry.target == target && entry.tower == "text" && image.contains(entry.precision) {
            if !found.contains(entry.precision) { found.append(entry.precision) }
        }
        return found
    }

    public func labelEntry(set: String, lang: String) throws -> LabelEntry {
        if let entry = labels.first(where: { $0.set == set && $0.lang == lang }) {
            return entry
        }
        let have = labels.map { "\($0.set) (\($0.lang))" }.joined(separator: ", ")
        throw CompressError("\(Self.manifestFile): no label set '\(set)' in '\(lang)'; the bundle has: \(have.isEmpty ? "none" : have)")
    }

    /// The label set names, in manifest order, that exist in `lang`.
    public func labelSets(lang: String) -> [String] {
        var names = [String]()
        for entry in labels where entry.lang == lang && !names.contains(entry.set) {
            names.append(entry.set)
        }
        return names
    }

    public func fileEntry(path: String) -> FileEntry? {
        files.first { $0.path == path }
    }

    /// Every listed file that belongs to `path`: the file itself, or the files inside a folder such
    /// as an `.mlpackage`.
    public func fileEntries(under path: String) -> [FileEntry] {
        let folder = path.hasSuffix("/") ? path : path + "/"
        return files.filter { $0.path == path || $0.path.hasPrefix(folder) }
    }

    /// Total listed bytes of `path` (a file, or a folder such as an `.mlpackage`).
    public func bytes(of path: String) -> Int64 {
        fileEntries(under: path).reduce(0) { $0 + $1.bytes }
    }

    /// Every path the manifest points at outside its file list, with what it is.
    public func referencedPaths() -> [(what: String, path: String)] {
        var paths: [(what: String, path: String)] = [
            ("text.tokenizer", text.tokenizer),
            ("text.tokenizer_json", text.tokenizerJson),
        ]
        for entry in models {
            paths.append(("models[\(entry.target) \(entry.tower) \(entry.precision)].file", entry.file))
        }
        for entry in labels {
            paths.append(("labels[\(entry.set).\(entry.lang)].file", entry.file))
        }
        if let golden { paths.append(("golden", golden)) }
        if let report { paths.append(("report", report)) }
        return paths
    }

    /// Read the fields this core uses; the format and schema version are checked first.
    public static func parse(_ json: JsonFields) throws -> BundleManifest {
        let format = try json.stringOrNil("format")
        if format != Self.format {
            throw CompressError("\(json.source): format is \(format.map { "'\($0)'" } ?? "missing"), not '\(Self.format)'")
        }
        let version: Int? = try json.has("schema_version") ? json.int("schema_version") : nil
        guard let version, version == Self.schemaVersion else {
            throw CompressError("\(json.source): schema_version \(version.map(String.init) ?? "missing") is not supported (this app reads \(Self.schemaVersion))")
        }
        let image = try json.obj("image")
        let text = try json.obj("text")
        let imageRule = try ImageRule(
            size: image.int("size"),
            mean: image.floats("mean"),
            std: image.floats("std"),
            resize: image.string("resize"),
            interpolation: image.string("interpolation")
        )
        let textRule = try TextRule(
            tokenizer: text.string("tokenizer"),
            tokenizerJson: text.string("tokenizer_json"),
            maxLength: text.int("max_length"),
            vocabSize: text.int("vocab_size"),
            padId: text.int("pad_id"),
            unkId: text.int("unk_id"),
            bosId: text.int("bos_id"),
            eosId: text.int("eos_id"),
            truncation: text.string("truncation")
        )
        var models = [ModelEntry]()
        for entry in try json.objects("models") {
            let input = try entry.obj("input")
            let output = try entry.obj("output")
            models.append(try ModelEntry(
                target: entry.string("target"),
                tower: entry.string("tower"),
                precision: entry.string("precision"),
                file: entry.string("file"),
                inputName: input.string("name"),
                inputShape: input.ints("shape"),
                inputDtype: input.string("dtype"),
                outputName: output.string("name")
            ))
        }
        var labels = [LabelEntry]()
        for entry in try json.objects("labels") {
            labels.append(try LabelEntry(set: entry.string("set"), lang: entry.string("lang"), file: entry.string("file"),
                                         classes: entry.int("classes")))
        }
        var files = [FileEntry]()
        for entry in try json.objects("files") {
            files.append(try FileEntry(path: entry.string("path"), sha256: entry.string("sha256"), bytes: entry.long("bytes")))
        }
        return try BundleManifest(
            schemaVersion: version,
            embedDim: json.int("embed_dim"),
            languages: json.strings("languages"),
            logitScale: json.double("logit_scale"),
            embeddingSpace: json.string("embedding_space"),
            image: imageRule,
            text: textRule,
            models: models,
            labels: labels,
            files: files,
            golden: json.stringOrNil("golden"),
            report: json.stringOrNil("report")
        )
    }
}
