import Foundation

/// A golden text: its exact model input row and expected embeddings.
public struct GoldenText {
    public let lang: String
    public let text: String
    public let ids: [Int]
    public let embedding: [Float]
    public let embeddingInt8: [Float]?
}

/// An expected top-5 entry of the golden picture for one label set and language.
public struct GoldenRank {
    public let index: Int
    public let className: String
    public let probability: Double
    public let cosine: Double
}

/// A golden picture: its file, exact pixel tensor, expected embeddings and top-5 per `<set>.<lang>`.
public struct GoldenImage {
    public let file: String
    public let pixelsFile: String
    public let inputShape: [Int]
    public let embedding: [Float]
    public let embeddingInt8: [Float]?
    public let top5: [String: [GoldenRank]]
}

/// `golden.json` of a bundle: the exact inputs and outputs every client proves itself against.
public struct Golden {
    public static let format = "compress-golden"
    public static let version = 2

    public let texts: [GoldenText]
    public let images: [GoldenImage]
    private let bundle: CompressBundle

    /// The exact model input of `image`: little-endian float32, NCHW.
    public func pixels(_ image: GoldenImage) throws -> [Float] {
        try Self.readFloats(bundle.file(image.pixelsFile))
    }

    private static func header(_ url: URL) throws -> JsonFields {
        let json = try JsonFields.read(url)
        if try json.stringOrNil("format") != format {
            throw CompressError("\(url.path): format is not '\(format)'")
        }
        let found: Int? = try json.has("version") ? json.int("version") : nil
        if found != version {
            throw CompressError("\(url.path): golden version \(found.map(String.init) ?? "missing") is not supported (this app reads \(version))")
        }
        return json
    }

    /// Refuse golden paths that leave the bundle, as for the manifest's own paths.
    static func checkPaths(_ url: URL, bundle: CompressBundle) throws {
        let json = try header(url)
        for image in try json.objects("images") {
            try CompressBundle.checkPath(root: bundle.folder, source: url, what: "images[].file", path: image.string("file"))
            try CompressBundle.checkPath(root: bundle.folder, source: url, what: "images[].pixels", path: image.string("pixels"))
        }
    }

    static func read(_ url: URL, bundle: CompressBundle) throws -> Golden {
        let json = try header(url)
        var texts = [GoldenText]()
        for item in try json.objects("texts") {
            let int8: [Float]? = try item.has("embedding_int8") ? item.floats("embedding_int8") : nil
            texts.append(try GoldenText(lang: item.string("lang"), text: item.string("text"), ids: item.ints("ids"),
                                        embedding: item.floats("embedding"), embeddingInt8: int8))
        }
        var images = [GoldenImage]()
        for image in try json.objects("images") {
            let ranks = try image.obj("top5")
            var top5 = [String: [GoldenRank]]()
            for key in ranks.values.keys.sorted() {
                var list = [GoldenRank]()
                for rank in try ranks.objects(key) {
                    list.append(try GoldenRank(index: rank.int("index"), className: rank.string("class"),
                                               probability: rank.double("probability"), cosine: rank.double("cosine")))
                }
                top5[key] = list
            }
            let int8: [Float]? = try image.has("embedding_int8") ? image.floats("embedding_int8") : nil
            images.append(try GoldenImage(file: image.string("file"), pixelsFile: image.string("pixels"),
                                          inputShape: image.ints("input_shape"), embedding: image.floats("embedding"),
                                          embeddingInt8: int8, top5: top5))
        }
        return Golden(texts: texts, images: images, bundle: bundle)
    }

    /// Raw little-endian float32 values of a file.
    public static func readFloats(_ url: URL) throws -> [Float] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw CompressError("\(url.path): missing") }
        let data = try Data(contentsOf: url)
        if data.count % 4 != 0 {
            throw CompressError("\(url.path): \(data.count) bytes is not a whole number of float32 values")
        }
        var values = [Float](repeating: 0, count: data.count / 4)
        data.withUnsafeBytes { raw in
            for i in 0..<values.count {
                let bits = raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
                values[i] = Float(bitPattern: UInt32(littleEndian: bits))
            }
        }
        return values
    }
}
