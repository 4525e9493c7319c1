@testable import CompressKit
import XCTest

/// Copies of the bundle with one thing wrong, each refused with the reason.
final class TamperedBundleTests: XCTestCase {
    private func assertRefused(_ folder: URL, _ reason: String, verifyFiles: Bool = true, file: StaticString = #filePath,
                               line: UInt = #line) {
        XCTAssertThrowsError(try CompressBundle.open(folder, verifyFiles: verifyFiles), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(reason), "expected '\(reason)' in: \(error)", file: file, line: line)
        }
    }

    private func editManifest(_ folder: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent(BundleManifest.manifestFile)
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&manifest)
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]).write(to: url)
    }

    /// A listed file that is not the manifest, in the sorted order verification walks.
    private func listedFile(_ folder: URL) throws -> String {
        let manifest = try BundleManifest.parse(JsonFields.read(folder.appendingPathComponent(BundleManifest.manifestFile)))
        return try XCTUnwrap(manifest.files.map(\.path).filter { $0.hasPrefix("labels/") }.sorted().first)
    }

    func testFlippedByteIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        let target = try copy.appendingPathComponent(listedFile(copy))
        var data = try Data(contentsOf: target)
        data[data.count / 2] ^= 0x01
        try data.write(to: target)
        assertRefused(copy, "altered (sha256 differs")
    }

    func testExtraFileIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try Data("not in the manifest".utf8).write(to: copy.appendingPathComponent("labels/extra.json"))
        assertRefused(copy, "unknown file, not listed")
    }

    func testMissingFileIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try FileManager.default.removeItem(at: copy.appendingPathComponent(listedFile(copy)))
        assertRefused(copy, "missing (listed in manifest.json)")
    }

    func testSymbolicLinkIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try FileManager.default.createSymbolicLink(atPath: copy.appendingPathComponent("link.json").path,
                                                   withDestinationPath: copy.appendingPathComponent(listedFile(copy)).path)
        assertRefused(copy, "a symbolic link")
    }

    func testParentPathInTheManifestIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try editManifest(copy) { manifest in
            manifest["golden"] = "../golden.json"
        }
        assertRefused(copy, "golden '../golden.json' contains a '..' segment")

        try editManifest(copy) { manifest in
            manifest["golden"] = "golden.json"
            var files = manifest["files"] as? [[String: Any]] ?? []
            files[0]["path"] = "labels/../../outside.json"
            manifest["files"] = files
        }
        assertRefused(copy, "contains a '..' segment")
    }

    func testShortenedFileIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        let target = try copy.appendingPathComponent(listedFile(copy))
        let data = try Data(contentsOf: target)
        try data.prefix(data.count - 1).write(to: target)
        assertRefused(copy, "bytes, manifest.json says")
    }

    func testSymlinkedFolderLeadingOutsideIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        let labels = copy.appendingPathComponent("labels")
        let outside = copy.deletingLastPathComponent().appendingPathComponent("labels-outside")
        try FileManager.default.moveItem(at: labels, to: outside)
        try FileManager.default.createSymbolicLink(atPath: labels.path, withDestinationPath: outside.path)
        assertRefused(copy, "resolves outside the bundle folder")
    }

    func testGoldenPathLeavingTheBundleIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        let url = copy.appendingPathComponent("golden.json")
        var golden = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var images = golden["images"] as? [[String: Any]] ?? []
        images[0]["pixels"] = "../image_0.pixels.f32"
        golden["images"] = images
        try JSONSerialization.data(withJSONObject: golden).write(to: url)
        // with every file verified, the altered golden.json is refused for its sha256 first
        assertRefused(copy, "golden.json: altered")
        assertRefused(copy, "images[].pixels '../image_0.pixels.f32' contains a '..' segment", verifyFiles: false)
    }

    func testManifestThatIsNotJsonIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try Data("{ not json".utf8).write(to: copy.appendingPathComponent(BundleManifest.manifestFile))
        assertRefused(copy, "not valid JSON")
    }

    func testMissingManifestIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try FileManager.default.removeItem(at: copy.appendingPathComponent(BundleManifest.manifestFile))
        assertRefused(copy, "not a bundle (no manifest.json)")
    }

    func testUnknownSchemaVersionIsRefused() throws {
        let copy = try BundleLocation.copy()
        defer { BundleLocation.remove(copy) }
        try editManifest(copy) { manifest in
            manifest["schema_version"] = 3
        }
        assertRefused(copy, "schema_version 3 is not supported")
        try editManifest(copy) { manifest in
            manifest["schema_version"] = 1
        }
        assertRefused(copy, "schema_version 1 is not supported")
    }
}
