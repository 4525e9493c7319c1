#if canImport(CoreML)
@testable import CompressKit
import CoreML
import XCTest

/// The bundle's Core ML models (compiled here as the app compiles them) against the golden
/// embeddings of the fp32 ExecuTorch models. Core ML predicts on macOS only, so this runs on a Mac.
final class CoreMLGoldenTests: XCTestCase {
    /// Lowest cosine to the fp32 golden embedding accepted per Core ML precision.
    static let minimumCosine: [String: Double] = ["fp16": 0.995, "int8-weights": 0.99, "palette6": 0.98, "palette4": 0.95]

    func testCoreMLModelsMatchGoldenEmbeddings() async throws {
        let bundle = try CompressBundle.open(BundleLocation.folder())
        let golden = try bundle.golden()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("compresskit-models-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let tokenizer = try bundle.tokenizer()
        let precisions = bundle.manifest.precisions(target: "coreml")
        XCTAssertFalse(precisions.isEmpty, "the bundle has no Core ML models")
        for precision in precisions {
            let limit = Self.minimumCosine[precision] ?? 0.95
            let imageEntry = try bundle.manifest.model(target: "coreml", tower: "image", precision: precision)
            let textEntry = try bundle.manifest.model(target: "coreml", tower: "text", precision: precision)
            let imageModel = try await CoreMLModelCache.compiledModel(imageEntry, in: bundle, cacheFolder: cache)
            let textModel = try await CoreMLModelCache.compiledModel(textEntry, in: bundle, cacheFolder: cache)
            let again = try await CoreMLModelCache.compiledModel(imageEntry, in: bundle, cacheFolder: cache)
            XCTAssertEqual(again, imageModel, "a compiled model is reused")
            let imageEncoder = try CoreMLImageEncoder(compiledModel: imageModel, entry: imageEntry, size: bundle.manifest.image.size,
                                                      computeUnits: .cpuOnly)
            let textEncoder = try CoreMLTextEncoder(compiledModel: textModel, entry: textEntry, computeUnits: .cpuOnly)
            for image in golden.images {
                // the exact model input, back to the bytes it was made of
                let pixels = try golden.pixels(image)
                let size = bundle.manifest.image.size
                let plane = size * size
                var picture = [UInt8](repeating: 0, count: 3 * plane)
                for i in 0..<plane {
                    for c in 0..<3 {
                        picture[3 * i + c] = UInt8((pixels[c * plane + i] * 255).rounded())
                    }
                }
                let cosine = try Classifier.cosine(imageEncoder.embedding(picture: picture), image.embedding)
                XCTAssertGreaterThan(cosine, limit, "\(precision) image model on \(image.file)")
            }
            for text in golden.texts {
                let cosine = try Classifier.cosine(textEncoder.embedding(ids: tokenizer.encode(text.text)), text.embedding)
                XCTAssertGreaterThan(cosine, limit, "\(precision) text model on \(text.text.debugDescription)")
            }
        }
    }
}
#endif
