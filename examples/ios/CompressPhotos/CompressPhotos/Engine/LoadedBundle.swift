import CompressKit
import CoreML
import Foundation

/// Everything the screens use from one verified bundle, for one Core ML precision.
final class LoadedBundle {
    static let target = "coreml"

    let bundle: CompressBundle
    let origin: BundleOrigin
    let precision: String
    let precisions: [String]
    let encoders: Encoders
    private var classifiers = [String: Classifier]()

    var manifest: BundleManifest { bundle.manifest }

    private init(bundle: CompressBundle, origin: BundleOrigin, precision: String, precisions: [String], encoders: Encoders) {
        self.bundle = bundle
        self.origin = origin
        self.precision = precision
        self.precisions = precisions
        self.encoders = encoders
    }

    /// The classifier of a label set in a language, read once. Called from the main actor only.
    func classifier(set: String, lang: String) throws -> Classifier {
        let key = "\(set).\(lang)"
        if let known = classifiers[key] { return known }
        let classifier = try bundle.classifier(set: set, lang: lang)
        classifiers[key] = classifier
        return classifier
    }

    /// Verify the bundle (every sha256), then compile its Core ML models once (kept in Application
    /// Support, keyed by their files' sha256) and load them. `progress` tells what is happening.
    static func load(preferredPrecision: String?, progress: @escaping (Phase) -> Void) async throws -> LoadedBundle {
        progress(.verifying)
        let (folder, origin) = try BundleLocator.locate()
        let bundle = try CompressBundle.open(folder)
        let manifest = bundle.manifest
        let precisions = manifest.precisions(target: target)
        guard let precision = preferredPrecision.flatMap({ precisions.contains($0) ? $0 : nil }) ?? precisions.first else {
            throw CompressError("\(folder.path): the bundle has no Core ML models (export it with --targets coreml)")
        }
        progress(.compiling)
        let cache = try BundleLocator.supportFolder("CompiledModels")
        let imageEntry = try manifest.model(target: target, tower: "image", precision: precision)
        let textEntry = try manifest.model(target: target, tower: "text", precision: precision)
        let imageModel = try await CoreMLModelCache.compiledModel(imageEntry, in: bundle, cacheFolder: cache)
        let textModel = try await CoreMLModelCache.compiledModel(textEntry, in: bundle, cacheFolder: cache)
        let encoders = try Encoders(
            image: CoreMLImageEncoder(compiledModel: imageModel, entry: imageEntry, size: manifest.image.size),
            text: CoreMLTextEncoder(compiledModel: textModel, entry: textEntry),
            tokenizer: bundle.tokenizer(),
            preprocessor: bundle.preprocessor()
        )
        return LoadedBundle(bundle: bundle, origin: origin, precision: precision, precisions: precisions, encoders: encoders)
    }

    enum Phase {
        case verifying
        case compiling
    }
}
