#if canImport(CoreML) && canImport(CoreVideo)
import CoreML
import CoreVideo
import CryptoKit
import Foundation

/// The bundle's `.mlpackage` files compiled once into `.mlmodelc` folders kept in `cacheFolder`,
/// named by the sha256 of the package's listed files, so a new bundle compiles again and an
/// unchanged one never does.
public enum CoreMLModelCache {
    public static func compiledModel(_ entry: ModelEntry, in bundle: CompressBundle, cacheFolder: URL) async throws -> URL {
        let listed = bundle.manifest.fileEntries(under: entry.file).sorted { $0.path < $1.path }
        if listed.isEmpty {
            throw CompressError("\(BundleManifest.manifestFile): \(entry.file) lists no files")
        }
        let key = identity(of: listed)
        let compiled = cacheFolder.appendingPathComponent("\(key).mlmodelc", isDirectory: true)
        let manager = FileManager.default
        if manager.fileExists(atPath: compiled.path) { return compiled }
        let temporary: URL
        do {
            temporary = try await MLModel.compileModel(at: bundle.file(entry.file))
        } catch {
            throw CompressError("\(bundle.file(entry.file).path): Core ML cannot compile it (\(error.localizedDescription))")
        }
        try manager.createDirectory(at: cacheFolder, withIntermediateDirectories: true)
        do {
            try manager.moveItem(at: temporary, to: compiled)
        } catch {
            try? manager.removeItem(at: temporary)
            if !manager.fileExists(atPath: compiled.path) { // else another task compiled it meanwhile
                throw CompressError("\(compiled.path): cannot keep the compiled model (\(error.localizedDescription))")
            }
        }
        return compiled
    }

    /// sha256 of the package's listed (path, sha256) lines: the files were verified when the bundle opened.
    static func identity(of files: [FileEntry]) -> String {
        let text = files.map { "\($0.path)\t\($0.sha256)\n" }.joined()
        let digest = SHA256.hash(data: Data(text.utf8))
        return String(digest.map { String(format: "%02x", $0) }.joined().prefix(32))
    }
}

/// Reads a model's float output (any layout Core ML hands back) as `[Float]`.
enum MultiArrayReader {
    static func floats(_ array: MLMultiArray) -> [Float] {
        let shape = array.shape.map(\.intValue)
        guard let width = shape.last else { return [] }
        var key = [NSNumber](repeating: 0, count: shape.count)
        return (0..<width).map { j in
            key[shape.count - 1] = NSNumber(value: j)
            return array[key].floatValue
        }
    }
}

/// The bundle's Core ML image model: a `CVPixelBuffer` of the S x S picture in (its `ImageType`
/// scales by 1/255 and the model normalises by mean/std itself), an L2-normalised embedding out.
public final class CoreMLImageEncoder {
    public let model: MLModel
    public let size: Int
    private let inputName: String
    private let outputName: String

    public init(compiledModel url: URL, entry: ModelEntry, size: Int, computeUnits: MLComputeUnits = .all) throws {
        if entry.tower != "image" || entry.inputDtype != "image" {
            throw CompressError("\(entry.file): not a Core ML image model taking a picture (input \(entry.inputDtype))")
        }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        do {
            model = try MLModel(contentsOf: url, configuration: configuration)
        } catch {
            throw CompressError("\(entry.file): Core ML cannot load it (\(error.localizedDescription))")
        }
        self.size = size
        inputName = entry.inputName
        outputName = entry.outputName
    }

    /// The embedding of `picture`: interleaved RGB bytes of S x S, as `ImagePreprocessor.modelPicture` gives.
    public func embedding(picture: [UInt8]) throws -> [Float] {
        let buffer = try Self.pixelBuffer(rgb: picture, size: size)
        let input = try MLDictionaryFeatureProvider(dictionary: [inputName: MLFeatureValue(pixelBuffer: buffer)])
        let output = try model.prediction(from: input)
        guard let array = output.featureValue(for: outputName)?.multiArrayValue else {
            throw CompressError("the image model has no '\(outputName)' output")
        }
        return Classifier.normalized(MultiArrayReader.floats(array))
    }

    /// A 32BGRA pixel buffer of interleaved RGB bytes; Core ML reorders the channels for the model's RGB `ImageType`.
    public static func pixelBuffer(rgb: [UInt8], size: Int) throws -> CVPixelBuffer {
        if rgb.count != size * size * 3 {
            throw CompressError("a \(size)x\(size) picture needs \(size * size * 3) bytes, got \(rgb.count)")
        }
        var created: CVPixelBuffer?
        let attributes: [CFString: Any] = [
            kCVPixelBufferCGImageCompatibilityKey: true,
            kCVPixelBufferCGBitmapContextCompatibilityKey: true,
            kCVPixelBufferIOSurfacePropertiesKey: [String: Any](),
        ]
        let status = CVPixelBufferCreate(kCFAllocatorDefault, size, size, kCVPixelFormatType_32BGRA, attributes as CFDictionary, &created)
        guard status == kCVReturnSuccess, let buffer = created else {
            throw CompressError("cannot create a \(size)x\(size) pixel buffer (CoreVideo status \(status))")
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw CompressError("cannot write a \(size)x\(size) pixel buffer")
        }
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        for y in 0..<size {
            for x in 0..<size {
                let s = (y * size + x) * 3
                let d = y * rowBytes + x * 4
                bytes[d] = rgb[s + 2]
                bytes[d + 1] = rgb[s + 1]
                bytes[d + 2] = rgb[s]
                bytes[d + 3] = 255
            }
        }
        return buffer
    }
}

/// The bundle's Core ML text model: int32 ids `[1, L]` in, an L2-normalised embedding out.
public final class CoreMLTextEncoder {
    public let model: MLModel
    private let inputName: String
    private let outputName: String
    private let length: Int

    public init(compiledModel url: URL, entry: ModelEntry, computeUnits: MLComputeUnits = .all) throws {
        if entry.tower != "text" || entry.inputDtype != "int32" || entry.inputShape.count != 2 {
            throw CompressError("\(entry.file): not a Core ML text model taking int32 ids [1, L] (input \(entry.inputDtype) \(entry.inputShape))")
        }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        do {
            model = try MLModel(contentsOf: url, configuration: configuration)
        } catch {
            throw CompressError("\(entry.file): Core ML cannot load it (\(error.localizedDescription))")
        }
        inputName = entry.inputName
        outputName = entry.outputName
        length = entry.inputShape[1]
    }

    /// The embedding of one id row (`UnigramTokenizer.encode`).
    public func embedding(ids: [Int]) throws -> [Float] {
        if ids.count != length {
            throw CompressError("the text model takes \(length) ids, got \(ids.count)")
        }
        let array = try MLMultiArray(shape: [1, NSNumber(value: length)], dataType: .int32)
        let pointer = array.dataPointer.bindMemory(to: Int32.self, capacity: length)
        for (i, id) in ids.enumerated() {
            pointer[i] = Int32(id)
        }
        let input = try MLDictionaryFeatureProvider(dictionary: [inputName: MLFeatureValue(multiArray: array)])
        let output = try model.prediction(from: input)
        guard let embedding = output.featureValue(for: outputName)?.multiArrayValue else {
            throw CompressError("the text model has no '\(outputName)' output")
        }
        return Classifier.normalized(MultiArrayReader.floats(embedding))
    }
}
#endif
