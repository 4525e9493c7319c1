import Foundation

/// SentencePiece's Unigram encoder, read from the bundle's `tokenizer.json` (Hugging Face format),
/// reproducing `sentencepiece` id for id:
/// - the raw text is not normalised; each ASCII space becomes `▁` and one `▁` is prepended
///   (nothing for the empty text);
/// - the best segmentation is SentencePiece's Viterbi over UTF-8 byte positions with float32 scores:
///   a character no piece covers is an unknown piece scored `min score - 10`, and ties keep the
///   candidate found first (the one starting earliest);
/// - control, unknown and byte pieces never match text; an unknown character becomes the
///   `<0xXX>` pieces of its UTF-8 bytes when byte fallback is on;
/// - the row is `[bos] + first max_length-2 piece ids + [eos]`, padded with `pad_id`.
public final class UnigramTokenizer {
    public static let marker = "\u{2581}"
    /// SentencePiece's penalty (kUnkPenalty) below the lowest piece score for an unknown piece.
    public static let unknownPenalty: Float = 10.0
    private static let markerBytes: [UInt8] = Array(marker.utf8)

    private let trie: Trie
    private let scores: [Float]
    private let byteIds: [Int]
    private let userDefined: [Bool]
    private let unknownScore: Float
    private let maxScore: Float
    private let unkId: Int
    private let byteFallback: Bool
    private let rule: TextRule

    public let vocabSize: Int

    public init(pieces: [(piece: String, score: Float)], unkId: Int, byteFallback: Bool, rule: TextRule, specialIds: Set<Int>,
                userDefinedIds: Set<Int> = []) {
        self.unkId = unkId
        self.byteFallback = byteFallback
        self.rule = rule
        scores = pieces.map { $0.score }
        vocabSize = pieces.count
        let userDefined = (0..<pieces.count).map { userDefinedIds.contains($0) }
        let trie = Trie()
        var byteIds = [Int](repeating: -1, count: 256)
        // SentencePiece takes the lowest and highest score over normal pieces only; its highest
        // starts at FLT_MIN (the smallest positive float), so it is never below that
        var minScore = Float.greatestFiniteMagnitude
        var highest = Float.leastNormalMagnitude
        var anyNormal = false
        for (id, entry) in pieces.enumerated() {
            if byteFallback, let byte = Self.bytePieceValue(entry.piece) {
                byteIds[byte] = id
            } else if id == unkId || specialIds.contains(id) {
                // control pieces never match text
            } else {
                trie.insert(Array(entry.piece.utf8), id: id)
                if !userDefined[id] {
                    anyNormal = true
                    minScore = min(minScore, entry.score)
                    highest = max(highest, entry.score)
                }
            }
        }
        if !anyNormal {
            minScore = 0
        }
        self.trie = trie
        self.byteIds = byteIds
        self.userDefined = userDefined
        unknownScore = minScore - Self.unknownPenalty
        maxScore = highest
    }

    /// The byte of a `<0xXX>` piece (two upper-case hex digits), or nil for any other piece.
    static func bytePieceValue(_ piece: String) -> Int? {
        let chars = Array(piece.utf8)
        guard chars.count == 6, chars[0] == UInt8(ascii: "<"), chars[1] == UInt8(ascii: "0"), chars[2] == UInt8(ascii: "x"),
              chars[5] == UInt8(ascii: ">") else { return nil }
        func hex(_ c: UInt8) -> Int? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A")) + 10
            default: return nil
            }
        }
        guard let high = hex(chars[3]), let low = hex(chars[4]) else { return nil }
        return high * 16 + low
    }

    /// The piece ids of `text`, without bos, eos or padding.
    public func pieceIds(_ text: String) -> [Int] {
        if text.isEmpty { return [] }
        var normalized = Self.markerBytes
        for byte in text.utf8 {
            if byte == UInt8(ascii: " ") {
                normalized.append(contentsOf: Self.markerBytes)
            } else {
                normalized.append(byte)
            }
        }
        let size = normalized.count
        var bestScore = [Float](repeating: 0, count: size + 1)
        var startsAt = [Int](repeating: -1, count: size + 1)
        var bestId = [Int](repeating: -1, count: size + 1)
        var start = 0
        while start < size {
            let scoreHere = bestScore[start]
            let charLength = min(Self.utf8Length(normalized[start]), size - start)
            var hasSingle = false
            // every piece that starts here, shortest first
            var node = 0
            var position = start
            while position < size, let next = trie.child(of: node, byte: normalized[position]) {
                node = next
                position += 1
                let id = trie.id(of: node)
                if id < 0 { continue }
                // as SentencePiece's C++: the piece score is a double there (a user-defined piece gets
                // length x max score - 0.1, always winning), the sum is compared in double, stored as float
                let score = userDefined[id] ? Double(Float(position - start) * maxScore) - 0.1 : Double(scores[id])
                let candidate = score + Double(scoreHere)
                if startsAt[position] == -1 || candidate > Double(bestScore[position]) {
                    bestScore[position] = Float(candidate)
                    startsAt[position] = start
                    bestId[position] = id
                }
                if position - start == charLength { hasSingle = true }
            }
            if !hasSingle {
                let end = start + charLength
                let candidate = unknownScore + scoreHere
                if startsAt[end] == -1 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    startsAt[end] = start
                    bestId[end] = unkId
                }
            }
            start += charLength
        }
        var reversed = [Int]()
        var end = size
        while end > 0 {
            let begin = startsAt[end]
            let id = bestId[end]
            if id == unkId && byteFallback && (begin..<end).allSatisfy({ byteIds[Int(normalized[$0])] >= 0 }) {
                for i in stride(from: end - 1, through: begin, by: -1) {
                    reversed.append(byteIds[Int(normalized[i])])
                }
            } else {
                reversed.append(id)
            }
            end = begin
        }
        return Array(reversed.reversed())
    }

    /// The model input row of `text`: `max_length` ids, bos, pieces, eos, pad.
    public func encode(_ text: String) -> [Int] {
        let length = rule.maxLength
        let pieces = pieceIds(text)
        let kept = min(pieces.count, length - 2)
        var row = [Int](repeating: rule.padId, count: length)
        row[0] = rule.bosId
        for i in 0..<kept {
            row[i + 1] = pieces[i]
        }
        row[kept + 1] = rule.eosId
        return row
    }

    private static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0..<0x80: return 1
        case 0xf0...: return 4
        case 0xe0...: return 3
        case 0xc0...: return 2
        default: return 1
        }
    }

    /// A byte trie of the pieces that can match text; node 0 is the root.
    private final class Trie {
        private var children: [[UInt8: Int]] = [[:]]
        private var ids: [Int] = [-1]

        func insert(_ key: [UInt8], id: Int) {
            var node = 0
            for byte in key {
                if let next = children[node][byte] {
                    node = next
                } else {
                    children.append([:])
                    ids.append(-1)
                    children[node][byte] = children.count - 1
                    node = children.count - 1
                }
            }
            if ids[node] == -1 { ids[node] = id }
        }

        func child(of node: Int, byte: UInt8) -> Int? {
            children[node][byte]
        }

        func id(of node: Int) -> Int {
            ids[node]
        }
    }

    /// Read a Hugging Face `tokenizer.json` holding a Unigram model, and check it is laid out as `rule` says.
    public static func read(_ url: URL, rule: TextRule) throws -> UnigramTokenizer {
        let json = try JsonFields.read(url)
        let file = url.path
        let model = try json.obj("model")
        let type = try model.string("type")
        if type != "Unigram" {
            throw CompressError("\(file): model.type is '\(type)', not 'Unigram'")
        }
        try checkPipeline(json, file: file)
        let vocab = try model.array("vocab")
        var pieces = [(piece: String, score: Float)]()
        pieces.reserveCapacity(vocab.count)
        for (i, entry) in vocab.enumerated() {
            guard let pair = entry.arrayValue, pair.count == 2, let piece = pair[0].stringValue, let score = pair[1].numberValue else {
                throw CompressError("\(file): model.vocab[\(i)] is not a [piece, score] pair")
            }
            pieces.append((piece, Float(score)))
        }
        if pieces.count != rule.vocabSize {
            throw CompressError("\(file): vocabulary of \(pieces.count) pieces, \(BundleManifest.manifestFile) says \(rule.vocabSize)")
        }
        let unkId = try model.has("unk_id") ? model.int("unk_id") : rule.unkId
        if unkId != rule.unkId {
            throw CompressError("\(file): unk_id \(unkId), \(BundleManifest.manifestFile) says \(rule.unkId)")
        }
        for (name, id) in [("pad_id", rule.padId), ("bos_id", rule.bosId), ("eos_id", rule.eosId), ("unk_id", rule.unkId)] {
            if id < 0 || id >= pieces.count {
                throw CompressError("\(file): text.\(name) \(id) is outside the vocabulary of \(pieces.count)")
            }
        }
        if rule.maxLength < 2 {
            throw CompressError("\(BundleManifest.manifestFile): text.max_length \(rule.maxLength) leaves no room for bos and eos")
        }
        // added tokens: special ones are control pieces (never matched in text), the others user-defined
        var special: Set<Int> = [rule.padId, rule.bosId, rule.eosId]
        var userDefined = Set<Int>()
        if json.has("added_tokens") {
            for token in try json.objects("added_tokens") {
                let id = try token.int("id")
                if id < 0 || id >= pieces.count {
                    throw CompressError("\(file): added token id \(id) is outside the vocabulary")
                }
                if try token.has("special") && token.boolean("special") {
                    special.insert(id)
                } else {
                    userDefined.insert(id)
                }
            }
        }
        let byteFallback = try model.has("byte_fallback") && model.boolean("byte_fallback")
        return UnigramTokenizer(pieces: pieces, unkId: unkId, byteFallback: byteFallback, rule: rule, specialIds: special,
                                userDefinedIds: userDefined)
    }

    /// Accept only pipelines that amount to SentencePiece's identity rule: spaces to `▁` and one
    /// `▁` prepended. Anything else (Unicode normalisation, lowercasing, splitting on punctuation)
    /// would change the ids, so such a file is refused rather than half followed.
    private static func checkPipeline(_ json: JsonFields, file: String) throws {
        var steps = [JsonFields]()
        for key in ["normalizer", "pre_tokenizer"] where json.has(key) {
            let step = try json.obj(key)
            if try step.string("type") == "Sequence" {
                let inner = step.has("normalizers") ? "normalizers" : "pretokenizers"
                steps += try step.objects(inner)
            } else {
                steps.append(step)
            }
        }
        for step in steps {
            let type = try step.string("type")
            let supported: Bool
            switch type {
            case "Metaspace":
                let scheme = try step.stringOrNil("prepend_scheme") ?? "always"
                supported = try step.string("replacement") == marker && (scheme == "always" || scheme == "first")
            case "Prepend":
                supported = try step.string("prepend") == marker
            case "Replace":
                supported = try step.obj("pattern").stringOrNil("String") == " " && step.string("content") == marker
            case "Precompiled":
                supported = try (step.stringOrNil("precompiled_charsmap") ?? "").isEmpty
            default:
                supported = false
            }
            if !supported {
                throw CompressError("\(file): a \(type) step is not SentencePiece's identity rule; this tokenizer cannot follow it")
            }
        }
    }
}
