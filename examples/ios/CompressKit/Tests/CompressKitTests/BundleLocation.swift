@testable import CompressKit
import Foundation
import XCTest

/// The bundle the golden tests run against: `$COMPRESS_BUNDLE`, else the demo run's
/// `runs/dc_clip/bundle` in this checkout. Without either the tests are skipped with that reason
/// (under `CI=true` they fail instead).
enum BundleLocation {
    static func folder() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["COMPRESS_BUNDLE"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        var root = URL(fileURLWithPath: #filePath) // <repo>/examples/ios/CompressKit/Tests/CompressKitTests/BundleLocation.swift
        for _ in 0..<6 {
            root = root.deletingLastPathComponent()
        }
        let demo = root.appendingPathComponent("runs/dc_clip/bundle", isDirectory: true)
        if FileManager.default.fileExists(atPath: demo.appendingPathComponent(BundleManifest.manifestFile).path) {
            return demo
        }
        let message = "no bundle to test against: set COMPRESS_BUNDLE to a bundle folder (`python -m compress recipe dc_clip` writes runs/dc_clip/bundle)"
        if environment["CI"] == "true" {
            throw CompressError(message)
        }
        throw XCTSkip(message)
    }

    /// A copy of the bundle in a fresh temporary folder, for tampering.
    static func copy() throws -> URL {
        let source = try folder()
        let target = FileManager.default.temporaryDirectory
            .appendingPathComponent("compresskit-\(UUID().uuidString)", isDirectory: true)
            .appendingPathComponent("bundle", isDirectory: true)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source, to: target)
        return target
    }

    static func remove(_ copy: URL) {
        try? FileManager.default.removeItem(at: copy.deletingLastPathComponent())
    }
}
