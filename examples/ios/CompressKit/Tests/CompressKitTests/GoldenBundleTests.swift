@testable import CompressKit
import XCTest

/// The core against the bundle's golden files: exact token ids, pixel tensors within 1/255,
/// the expected top-5, and the bundle identity a search index is stored with.
final class GoldenBundleTests: XCTestCase {
    func testBundleOpensVerified() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        XCTAssertEqual(bundle.manifest.schemaVersion, 2)
        XCTAssertEqual(bundle.manifest.embeddingSpace.count, 64)
        XCTAssertFalse(bundle.manifest.precisions(target: "coreml").isEmpty, "the bundle has no Core ML models")
    }

    func testGoldenTokenIds() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        let tokenizer = try bundle.tokenizer()
        let golden = try bundle.golden()
        XCTAssertFalse(golden.texts.isEmpty)
        XCTAssertEqual(Set(golden.texts.map(\.lang)), Set(bundle.manifest.languages))
        for text in golden.texts {
            XCTAssertEqual(tokenizer.encode(text.text), text.ids, "token ids of \(text.text.debugDescription)")
        }
    }

    func testTokenizerRowsFollowTheManifest() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        let rule = bundle.manifest.text
        let tokenizer = try bundle.tokenizer()
        XCTAssertEqual(tokenizer.vocabSize, rule.vocabSize)
        // the empty text is bos, eos and padding
        XCTAssertEqual(tokenizer.encode(""), [rule.bosId, rule.eosId] + [Int](repeating: rule.padId, count: rule.maxLength - 2))
        // a long text keeps its first pieces and still ends with eos
        let long = String(repeating: "a red circle left of a blue square ", count: 20)
        let row = tokenizer.encode(long)
        XCTAssertEqual(row.count, rule.maxLength)
        XCTAssertEqual(row.last, rule.eosId)
        XCTAssertEqual(Array(row[1..<rule.maxLength - 1]), Array(tokenizer.pieceIds(long).prefix(rule.maxLength - 2)))
        // a character no piece covers becomes its UTF-8 bytes
        let unseen = "\u{1F9EC}" // 🧬, four bytes
        let pieces = tokenizer.pieceIds(unseen)
        XCTAssertGreaterThanOrEqual(pieces.count, 4)
        XCTAssertFalse(pieces.contains(rule.unkId), "byte fallback leaves no unknown piece")
    }

    func testAnUnknownLabelSetNamesTheOnesThereAre() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        XCTAssertThrowsError(try bundle.classifier(set: "no-such-set", lang: "en")) { error in
            let first = bundle.manifest.labels[0]
            XCTAssertTrue("\(error)".contains("\(first.set) (\(first.lang))"), "\(error)")
        }
    }

    #if canImport(ImageIO) && canImport(CoreGraphics) && canImport(Accelerate)
    func testGoldenPixelsFromThePicture() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        let preprocessor = try bundle.preprocessor()
        let golden = try bundle.golden()
        XCTAssertFalse(golden.images.isEmpty)
        for image in golden.images {
            XCTAssertEqual(image.inputShape, preprocessor.shape)
            let (picture, orientation) = try PictureDecoder.decode(contentsOf: bundle.file(image.file))
            let mine = try preprocessor.pixels(picture, orientation: orientation)
            let expected = try golden.pixels(image)
            XCTAssertEqual(mine.count, expected.count, image.file)
            var worst: Float = 0
            for (a, b) in zip(mine, expected) {
                worst = max(worst, abs(a - b))
            }
            XCTAssertLessThanOrEqual(worst, 1.0 / 255.0 + 1e-6, "\(image.file): pixels differ by up to \(worst * 255)/255")
        }
    }
    #endif

    func testGoldenTop5FromGoldenEmbeddings() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        let golden = try bundle.golden()
        XCTAssertFalse(golden.images.isEmpty)
        for image in golden.images {
            XCTAssertEqual(image.top5.count, bundle.manifest.labels.count, "\(image.file): one top-5 per label set and language")
            for (key, ranks) in image.top5 {
                guard let dot = key.lastIndex(of: ".") else {
                    XCTFail("top5 key \(key) is not <set>.<lang>")
                    continue
                }
                let set = String(key[..<dot])
                let lang = String(key[key.index(after: dot)...])
                let predictions = try bundle.classifier(set: set, lang: lang).classify(image.embedding, top: ranks.count)
                XCTAssertEqual(predictions.map(\.index), ranks.map(\.index), key)
                for (prediction, rank) in zip(predictions, ranks) {
                    XCTAssertEqual(prediction.className, rank.className, key)
                    XCTAssertEqual(prediction.probability, rank.probability, accuracy: 1e-4, key)
                    XCTAssertEqual(Double(prediction.cosine), rank.cosine, accuracy: 1e-4, key)
                }
            }
        }
    }

    func testSearchIndexTiedToTheBundle() throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        let golden = try bundle.golden()
        let manifest = bundle.manifest
        let index = SearchIndex(embeddingSpace: manifest.embeddingSpace, precision: "fp16", embedDim: manifest.embedDim)
        for image in golden.images {
            try index.add(image.file, embedding: image.embedding)
        }
        for (i, text) in golden.texts.enumerated() {
            try index.add("text-\(i)", embedding: text.embedding)
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("compresskit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("search.index")
        try index.save(file)
        let loaded = try SearchIndex.load(file, embeddingSpace: manifest.embeddingSpace, precision: "fp16")
        XCTAssertEqual(loaded.keys(), index.keys())
        let first = try XCTUnwrap(golden.images.first)
        let hit = try XCTUnwrap(loaded.search(first.embedding, top: 1).first)
        XCTAssertEqual(hit.key, first.file)
        XCTAssertEqual(hit.cosine, 1, accuracy: 1e-5)
        let otherSpace = String(manifest.embeddingSpace.reversed())
        XCTAssertThrowsError(try SearchIndex.load(file, embeddingSpace: otherSpace, precision: "fp16"))
        XCTAssertThrowsError(try SearchIndex.load(file, embeddingSpace: manifest.embeddingSpace, precision: "palette4"))
    }
}
