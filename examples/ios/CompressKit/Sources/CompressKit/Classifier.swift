import Foundation

/// `labels/<set>.<lang>.json`: class names, prompt templates and one L2-normalised embedding per class.
public struct LabelSet {
    public let classnames: [String]
    public let templates: [String]
    public let embedDim: Int
    /// Row-major `[classes, embedDim]`.
    public let embeddings: [Float]

    public var count: Int { classnames.count }

    public static func read(_ url: URL, embedDim: Int) throws -> LabelSet {
        let json = try JsonFields.read(url)
        let classnames = try json.strings("classnames")
        let templates = try json.has("templates") ? json.strings("templates") : []
        let (width, values) = try json.matrix("embeddings")
        let rows = width == 0 ? 0 : values.count / width
        if rows != classnames.count {
            throw CompressError("\(url.path): \(classnames.count) class names but \(rows) embedding rows")
        }
        if rows == 0 {
            throw CompressError("\(url.path): no classes")
        }
        if width != embedDim {
            throw CompressError("\(url.path): embeddings of width \(width), \(BundleManifest.manifestFile) says embed_dim \(embedDim)")
        }
        return LabelSet(classnames: classnames, templates: templates, embedDim: width, embeddings: values)
    }
}

/// One class of a picture's top-k: its index in the label set, its name, softmax probability and cosine.
public struct Prediction: Equatable {
    public let index: Int
    public let className: String
    public let probability: Double
    public let cosine: Float
}

/// Zero-shot classification against a label set, as the reference client does it:
/// `cosine = embeddings @ image_embedding`, probabilities = softmax(`logit_scale` x cosine).
public struct Classifier {
    public let labels: LabelSet
    public let logitScale: Double

    public init(labels: LabelSet, logitScale: Double) throws {
        if !(logitScale > 0) {
            throw CompressError("\(BundleManifest.manifestFile): logit_scale \(logitScale) is not positive")
        }
        self.labels = labels
        self.logitScale = logitScale
    }

    /// The cosine of each class embedding to `embedding` (both unit length, so a dot product).
    public func cosines(_ embedding: [Float]) throws -> [Float] {
        let dim = labels.embedDim
        if embedding.count != dim {
            throw CompressError("an image embedding of width \(embedding.count) cannot be scored against classes of width \(dim)")
        }
        return (0..<labels.count).map { Self.dot(labels.embeddings, offset: $0 * dim, embedding, count: dim) }
    }

    /// The `top` most probable classes; equal probabilities keep the lower class index first.
    /// Cosines are float32 (as the models' outputs are), the softmax runs in double precision.
    public func classify(_ embedding: [Float], top: Int = 5) throws -> [Prediction] {
        let cosine = try cosines(embedding)
        let logits = cosine.map { logitScale * Double($0) }
        let highest = logits.max() ?? 0
        let weights = logits.map { exp($0 - highest) }
        let total = weights.reduce(0, +)
        let probability = weights.map { $0 / total }
        return Self.rankDescending(probability, top: top).map {
            Prediction(index: $0, className: labels.classnames[$0], probability: probability[$0], cosine: cosine[$0])
        }
    }

    /// Indices of the `top` largest values, larger first, equal values by lower index.
    public static func rankDescending(_ values: [Double], top: Int) -> [Int] {
        let order = values.indices.sorted { a, b in
            values[a] != values[b] ? values[a] > values[b] : a < b
        }
        return Array(order.prefix(max(0, top)))
    }

    public static func dot(_ matrix: [Float], offset: Int, _ vector: [Float], count: Int) -> Float {
        var sum: Float = 0
        for i in 0..<count {
            sum += matrix[offset + i] * vector[i]
        }
        return sum
    }

    /// `vector` scaled to unit length (a zero vector stays zero).
    public static func normalized(_ vector: [Float]) -> [Float] {
        var squares: Double = 0
        for v in vector {
            squares += Double(v) * Double(v)
        }
        let norm = squares.squareRoot()
        if norm == 0 { return vector }
        return vector.map { Float(Double($0) / norm) }
    }

    /// The cosine of two vectors of any length.
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot: Double = 0
        var aa: Double = 0
        var bb: Double = 0
        for i in 0..<min(a.count, b.count) {
            dot += Double(a[i]) * Double(b[i])
            aa += Double(a[i]) * Double(a[i])
            bb += Double(b[i]) * Double(b[i])
        }
        let norms = (aa * bb).squareRoot()
        return norms == 0 ? 0 : dot / norms
    }
}
