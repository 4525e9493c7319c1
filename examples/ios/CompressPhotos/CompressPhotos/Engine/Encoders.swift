import CompressKit
import CoreML
import Foundation

/// The Core ML encoders of one bundle and precision, with the core's tokenizer and preprocessing
/// in front of them. An actor, so that predictions run off the main thread and one at a time.
actor Encoders {
    struct PictureEmbedding {
        let embedding: [Float]
        /// The S x S RGB picture the model saw.
        let modelPicture: [UInt8]
        let preprocessMilliseconds: Double
        let modelMilliseconds: Double
    }

    struct Latency {
        let imageMilliseconds: Double
        let textMilliseconds: Double
    }

    struct GoldenAgreement {
        let imageCosine: Double
        let worstTextCosine: Double
        let texts: Int
    }

    private let image: CoreMLImageEncoder
    private let text: CoreMLTextEncoder
    private let tokenizer: UnigramTokenizer
    private let preprocessor: ImagePreprocessor

    init(image: CoreMLImageEncoder, text: CoreMLTextEncoder, tokenizer: UnigramTokenizer, preprocessor: ImagePreprocessor) {
        self.image = image
        self.text = text
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
    }

    func embedPicture(_ picture: ArgbImage, orientation: Int) throws -> PictureEmbedding {
        let clock = ContinuousClock()
        var modelPicture = [UInt8]()
        let preprocess = try clock.measure {
            modelPicture = try preprocessor.modelPicture(picture, orientation: orientation)
        }
        var embedding = [Float]()
        let model = try clock.measure {
            embedding = try image.embedding(picture: modelPicture)
        }
        return PictureEmbedding(embedding: embedding, modelPicture: modelPicture,
                                preprocessMilliseconds: preprocess.milliseconds, modelMilliseconds: model.milliseconds)
    }

    func embedText(_ query: String) throws -> (embedding: [Float], milliseconds: Double) {
        let ids = tokenizer.encode(query)
        var embedding = [Float]()
        let elapsed = try ContinuousClock().measure {
            embedding = try text.embedding(ids: ids)
        }
        return (embedding, elapsed.milliseconds)
    }

    /// Median milliseconds of each encoder over `repeats` runs after `warmup` runs.
    func measureLatency(picture: [UInt8], text sample: String, warmup: Int = 3, repeats: Int = 20) throws -> Latency {
        let ids = tokenizer.encode(sample)
        let clock = ContinuousClock()
        for _ in 0..<warmup {
            _ = try image.embedding(picture: picture)
            _ = try text.embedding(ids: ids)
        }
        var imageTimes = [Double]()
        var textTimes = [Double]()
        for _ in 0..<repeats {
            let imageTime = try clock.measure { _ = try image.embedding(picture: picture) }
            let textTime = try clock.measure { _ = try text.embedding(ids: ids) }
            imageTimes.append(imageTime.milliseconds)
            textTimes.append(textTime.milliseconds)
        }
        return Latency(imageMilliseconds: Self.median(imageTimes), textMilliseconds: Self.median(textTimes))
    }

    /// Cosines of this device's embeddings to the bundle's golden ones (from the fp32 ExecuTorch models).
    func goldenAgreement(_ golden: Golden) throws -> GoldenAgreement? {
        guard let first = golden.images.first else { return nil }
        let pixels = try golden.pixels(first)
        let onDevice = try image.embedding(picture: Self.picture(fromTensor: pixels, size: preprocessor.size))
        let imageCosine = Classifier.cosine(onDevice, first.embedding)
        var worst = 1.0
        for item in golden.texts {
            let embedding = try text.embedding(ids: tokenizer.encode(item.text))
            worst = min(worst, Classifier.cosine(embedding, item.embedding))
        }
        return GoldenAgreement(imageCosine: imageCosine, worstTextCosine: worst, texts: golden.texts.count)
    }

    /// A float32 NCHW model input (byte / 255) back to the interleaved RGB bytes it was made of.
    static func picture(fromTensor pixels: [Float], size: Int) -> [UInt8] {
        let plane = size * size
        var picture = [UInt8](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 {
                picture[3 * i + c] = UInt8(max(0, min(255, (pixels[c * plane + i] * 255).rounded())))
            }
        }
        return picture
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

extension Duration {
    var milliseconds: Double {
        let parts = components
        return Double(parts.seconds) * 1000 + Double(parts.attoseconds) / 1e15
    }
}
