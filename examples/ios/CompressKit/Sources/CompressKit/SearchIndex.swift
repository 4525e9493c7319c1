import Foundation

/// A search result: the stored item's key and its cosine to the query.
public struct SearchHit: Equatable {
    public let key: String
    public let cosine: Float
}

/// Image embeddings of a photo library, keyed by a stable photo key (a Photos local identifier, a
/// path), that a text embedding searches by cosine. The index belongs to one embedding space and
/// precision: a file written for another bundle is refused by `load` (an app then starts a fresh
/// index), never mixed in.
///
/// The file layout is the Android app's (Java `DataOutputStream`: big-endian numbers, strings as a
/// 2-byte length and modified UTF-8), so an index file means the same on both platforms.
public final class SearchIndex {
    private static let magic = "compress-search-index"
    private static let version: Int32 = 1

    public let embeddingSpace: String
    public let precision: String
    public let embedDim: Int
    private var keyList = [String]()
    private var positions = [String: Int]()
    private var vectors = [Float]()

    public init(embeddingSpace: String, precision: String, embedDim: Int) {
        self.embeddingSpace = embeddingSpace
        self.precision = precision
        self.embedDim = embedDim
    }

    public var count: Int { keyList.count }

    public func contains(_ key: String) -> Bool {
        positions[key] != nil
    }

    public func keys() -> [String] {
        keyList
    }

    /// Add or replace the embedding of `key`; it is L2-normalised on the way in.
    public func add(_ key: String, embedding: [Float]) throws {
        if embedding.count != embedDim {
            throw CompressError("index of width \(embedDim) cannot store an embedding of width \(embedding.count) for \(key)")
        }
        let unit = Classifier.normalized(embedding)
        if let at = positions[key] {
            vectors.replaceSubrange(at * embedDim..<(at + 1) * embedDim, with: unit)
            return
        }
        vectors.append(contentsOf: unit)
        positions[key] = keyList.count
        keyList.append(key)
    }

    /// Remove `key`; returns whether it was there. The last item moves into its place.
    @discardableResult
    public func remove(_ key: String) -> Bool {
        guard let at = positions.removeValue(forKey: key) else { return false }
        let last = keyList.count - 1
        if at != last {
            let moved = keyList[last]
            keyList[at] = moved
            positions[moved] = at
            for j in 0..<embedDim {
                vectors[at * embedDim + j] = vectors[last * embedDim + j]
            }
        }
        keyList.removeLast()
        vectors.removeLast(embedDim)
        return true
    }

    /// Keep only the keys in `present` (photos deleted from the library leave the index).
    @discardableResult
    public func retainAll(_ present: Set<String>) -> Int {
        let gone = keyList.filter { !present.contains($0) }
        for key in gone {
            remove(key)
        }
        return gone.count
    }

    /// The `top` items closest to `query` by cosine, ties by the key's sort order (UTF-16 code units,
    /// as Kotlin's `String.compareTo`).
    public func search(_ query: [Float], top: Int) throws -> [SearchHit] {
        if query.count != embedDim {
            throw CompressError("a query of width \(query.count) cannot search an index of width \(embedDim)")
        }
        let unit = Classifier.normalized(query)
        let scores = (0..<keyList.count).map { Classifier.dot(vectors, offset: $0 * embedDim, unit, count: embedDim) }
        let order = keyList.indices.sorted { a, b in
            if scores[a] != scores[b] { return scores[a] > scores[b] }
            return keyList[a].utf16.lexicographicallyPrecedes(keyList[b].utf16)
        }
        return order.prefix(max(0, top)).map { SearchHit(key: keyList[$0], cosine: scores[$0]) }
    }

    /// Write the index atomically (a temporary file renamed into place).
    public func save(_ url: URL) throws {
        var out = BinaryWriter()
        try out.writeUTF(Self.magic)
        out.writeInt(Self.version)
        try out.writeUTF(embeddingSpace)
        try out.writeUTF(precision)
        out.writeInt(Int32(embedDim))
        out.writeInt(Int32(keyList.count))
        for (i, key) in keyList.enumerated() {
            try out.writeUTF(key)
            for j in 0..<embedDim {
                out.writeFloat(vectors[i * embedDim + j])
            }
        }
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(out.bytes).write(to: url, options: .atomic)
        } catch {
            throw CompressError("\(url.path): cannot write the search index (\(error.localizedDescription))")
        }
    }

    /// The stored index of `url`, or a `CompressError` saying why it cannot be used for this bundle.
    public static func load(_ url: URL, embeddingSpace: String, precision: String) throws -> SearchIndex {
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else { throw CompressError("\(file): no search index") }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CompressError("\(file): cannot read the search index (\(error.localizedDescription))")
        }
        var input = BinaryReader(bytes: [UInt8](data), file: file)
        if try input.readUTF() != magic { throw CompressError("\(file): not a search index") }
        let storedVersion = try input.readInt()
        if storedVersion != version {
            throw CompressError("\(file): search index version \(storedVersion), this app writes \(version)")
        }
        let space = try input.readUTF()
        let storedPrecision = try input.readUTF()
        if space != embeddingSpace {
            throw CompressError("\(file): built for embedding space \(space.prefix(12)), the bundle's is \(embeddingSpace.prefix(12))")
        }
        if storedPrecision != precision {
            throw CompressError("\(file): built with \(storedPrecision) models, \(precision) is in use")
        }
        let dim = try Int(input.readInt())
        let count = try Int(input.readInt())
        if dim <= 0 || count < 0 { throw CompressError("\(file): damaged search index header") }
        let index = SearchIndex(embeddingSpace: space, precision: storedPrecision, embedDim: dim)
        var row = [Float](repeating: 0, count: dim)
        for _ in 0..<count {
            let key = try input.readUTF()
            for j in 0..<dim {
                row[j] = try input.readFloat()
            }
            try index.add(key, embedding: row)
        }
        if !input.atEnd { throw CompressError("\(file): trailing bytes after \(count) entries") }
        return index
    }

    /// The stored index when it belongs to this embedding space and precision, else a new empty one,
    /// with the reason the stored one was not used.
    public static func loadOrCreate(_ url: URL, embeddingSpace: String, precision: String, embedDim: Int) -> (index: SearchIndex, problem: String?) {
        do {
            let index = try load(url, embeddingSpace: embeddingSpace, precision: precision)
            if index.embedDim != embedDim {
                return (SearchIndex(embeddingSpace: embeddingSpace, precision: precision, embedDim: embedDim),
                        "\(url.path): width \(index.embedDim), the bundle's is \(embedDim)")
            }
            return (index, nil)
        } catch {
            return (SearchIndex(embeddingSpace: embeddingSpace, precision: precision, embedDim: embedDim), "\(error.localizedDescription)")
        }
    }
}

/// Java `DataOutputStream` encoding: big-endian numbers, `writeUTF` strings.
struct BinaryWriter {
    private(set) var bytes = [UInt8]()

    mutating func writeInt(_ value: Int32) {
        let bits = UInt32(bitPattern: value)
        bytes.append(contentsOf: [UInt8(bits >> 24), UInt8((bits >> 16) & 0xff), UInt8((bits >> 8) & 0xff), UInt8(bits & 0xff)])
    }

    mutating func writeFloat(_ value: Float) {
        writeInt(Int32(bitPattern: value.bitPattern))
    }

    /// A 2-byte length, then the string in modified UTF-8 (NUL as two bytes, UTF-16 surrogates
    /// encoded one by one), as `DataOutputStream.writeUTF`.
    mutating func writeUTF(_ value: String) throws {
        var encoded = [UInt8]()
        for unit in value.utf16 {
            switch unit {
            case 0x0001...0x007F:
                encoded.append(UInt8(unit))
            case 0x0000, 0x0080...0x07FF:
                encoded.append(UInt8(0xC0 | (unit >> 6)))
                encoded.append(UInt8(0x80 | (unit & 0x3F)))
            default:
                encoded.append(UInt8(0xE0 | (unit >> 12)))
                encoded.append(UInt8(0x80 | ((unit >> 6) & 0x3F)))
                encoded.append(UInt8(0x80 | (unit & 0x3F)))
            }
        }
        if encoded.count > 0xFFFF {
            throw CompressError("a search index key or field of \(encoded.count) bytes is longer than 65535")
        }
        bytes.append(UInt8(encoded.count >> 8))
        bytes.append(UInt8(encoded.count & 0xff))
        bytes.append(contentsOf: encoded)
    }
}

/// Reads what `BinaryWriter` wrote; a short file is a `CompressError` naming `file`.
struct BinaryReader {
    let bytes: [UInt8]
    let file: String
    private var position = 0

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    var atEnd: Bool { position == bytes.count }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        if position + count > bytes.count {
            throw CompressError("\(file): search index ends early (damaged)")
        }
        let slice = bytes[position..<position + count]
        position += count
        return slice
    }

    mutating func readInt() throws -> Int32 {
        let b = try take(4)
        let bits = b.reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        return Int32(bitPattern: bits)
    }

    mutating func readFloat() throws -> Float {
        try Float(bitPattern: UInt32(bitPattern: readInt()))
    }

    mutating func readUTF() throws -> String {
        let length = try take(2).reduce(0) { ($0 << 8) | Int($1) }
        let encoded = try Array(take(length))
        var units = [UInt16]()
        var i = 0
        while i < encoded.count {
            let a = UInt16(encoded[i])
            if a < 0x80 {
                units.append(a)
                i += 1
            } else if a & 0xE0 == 0xC0, i + 1 < encoded.count, encoded[i + 1] & 0xC0 == 0x80 {
                units.append(((a & 0x1F) << 6) | (UInt16(encoded[i + 1]) & 0x3F))
                i += 2
            } else if a & 0xF0 == 0xE0, i + 2 < encoded.count, encoded[i + 1] & 0xC0 == 0x80, encoded[i + 2] & 0xC0 == 0x80 {
                units.append(((a & 0x0F) << 12) | ((UInt16(encoded[i + 1]) & 0x3F) << 6) | (UInt16(encoded[i + 2]) & 0x3F))
                i += 3
            } else {
                throw CompressError("\(file): damaged string in the search index")
            }
        }
        return String(decoding: units, as: UTF16.self)
    }
}
