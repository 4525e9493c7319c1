@testable import CompressKit
import XCTest

/// The core's algorithms against values computed by Pillow and by the reference client's rules;
/// these need no bundle.
final class CoreAlgorithmTests: XCTestCase {
    // A 7 x 5 RGB picture, row-major interleaved, and Pillow 13's BILINEAR resizes of it.
    static let source: [UInt8] = [
        0, 3, 0, 37, 8, 1, 74, 13, 4, 111, 18, 9, 148, 23, 16, 185, 28, 25, 222, 33, 36, 11, 74, 13, 48, 79, 14, 85, 84, 17,
        122, 89, 22, 159, 94, 29, 196, 99, 38, 233, 104, 49, 22, 145, 52, 59, 150, 53, 96, 155, 56, 133, 160, 61, 170, 165,
        68, 207, 170, 77, 244, 175, 88, 33, 216, 117, 70, 221, 118, 107, 226, 121, 144, 231, 126, 181, 236, 133, 218, 241,
        142, 255, 246, 153, 44, 31, 208, 81, 36, 209, 118, 41, 212, 155, 46, 217, 192, 51, 224, 229, 56, 233, 10, 61, 244,
    ]

    func testResizeOneAxisEqualsPillowExactly() {
        // vertical only (7x5 -> 7x3) and horizontal only (7x5 -> 2x5): one pass, byte-exact
        let vertical: [UInt8] = [
            5, 33, 6, 42, 38, 7, 79, 43, 10, 116, 48, 15, 153, 53, 22, 190, 58, 31, 227, 63, 42, 22, 145, 58, 59, 150, 59, 96,
            155, 62, 133, 160, 67, 170, 165, 74, 207, 170, 83, 244, 175, 94, 39, 110, 169, 76, 115, 170, 113, 120, 173, 150,
            125, 178, 187, 130, 185, 224, 135, 194, 115, 140, 205,
        ]
        let horizontal: [UInt8] = [
            59, 11, 4, 163, 25, 21, 70, 82, 17, 174, 96, 34, 81, 153, 56, 185, 167, 73, 92, 224, 121, 196, 238, 138, 103, 39,
            212, 154, 53, 229,
        ]
        XCTAssertEqual(PillowBilinear.resize(Self.source, width: 7, height: 5, outWidth: 7, outHeight: 3), vertical)
        XCTAssertEqual(PillowBilinear.resize(Self.source, width: 7, height: 5, outWidth: 2, outHeight: 5), horizontal)
        XCTAssertEqual(PillowBilinear.resize(Self.source, width: 7, height: 5, outWidth: 7, outHeight: 5), Self.source)
    }

    func testResizeBothAxesWithinOneOfPillow() {
        // Pillow 13 may run the vertical pass first; the bundle contract allows 1/255 for that
        let both: [(Int, Int, [UInt8])] = [
            (3, 2, [43, 78, 23, 122, 89, 32, 201, 100, 49, 65, 139, 127, 144, 150, 136, 194, 161, 153]),
            (4, 7, [19, 6, 1, 77, 13, 5, 145, 23, 16, 203, 30, 30, 25, 47, 8, 83, 54, 12, 151, 64, 23, 209, 71, 37, 33, 97, 25,
                    91, 104, 29, 159, 114, 40, 217, 121, 54, 41, 148, 53, 99, 155, 57, 167, 165, 68, 225, 172, 82, 49, 199, 99,
                    107, 206, 103, 175, 216, 114, 233, 223, 128, 57, 140, 157, 115, 147, 161, 183, 157, 172, 183, 164, 186, 63,
                    34, 209, 121, 41, 213, 189, 51, 224, 113, 58, 238]),
        ]
        for (width, height, expected) in both {
            let resized = PillowBilinear.resize(Self.source, width: 7, height: 5, outWidth: width, outHeight: height)
            XCTAssertEqual(resized.count, expected.count)
            for (a, b) in zip(resized, expected) {
                XCTAssertLessThanOrEqual(abs(Int(a) - Int(b)), 1, "\(width)x\(height)")
            }
        }
    }

    func testCompositeOnWhiteEqualsPillowAlphaComposite() throws {
        // (value, alpha) -> Pillow's alpha_composite over opaque white
        let cases: [(UInt32, UInt32, UInt8)] = [(0, 128, 127), (200, 1, 255), (17, 254, 18), (255, 77, 255), (90, 0, 255), (33, 255, 33)]
        let pixels = cases.map { $0.1 << 24 | $0.0 << 16 | $0.0 << 8 | $0.0 }
        let rgb = try ArgbImage(width: cases.count, height: 1, pixels: pixels).rgbOnWhite()
        for (i, item) in cases.enumerated() {
            XCTAssertEqual(Array(rgb[3 * i..<3 * i + 3]), [item.2, item.2, item.2], "value \(item.0) alpha \(item.1)")
        }
    }

    func testOrientationsTurnLikeExifTranspose() throws {
        // a 3 x 2 picture whose pixel values are their own index
        let image = try ArgbImage(width: 3, height: 2, pixels: [0, 1, 2, 3, 4, 5])
        let expected: [Int: (Int, Int, [UInt32])] = [
            1: (3, 2, [0, 1, 2, 3, 4, 5]),
            2: (3, 2, [2, 1, 0, 5, 4, 3]),
            3: (3, 2, [5, 4, 3, 2, 1, 0]),
            4: (3, 2, [3, 4, 5, 0, 1, 2]),
            5: (2, 3, [0, 3, 1, 4, 2, 5]),
            6: (2, 3, [3, 0, 4, 1, 5, 2]),
            7: (2, 3, [5, 2, 4, 1, 3, 0]),
            8: (2, 3, [2, 5, 1, 4, 0, 3]),
        ]
        for (orientation, (width, height, pixels)) in expected {
            let turned = try image.oriented(orientation)
            XCTAssertEqual(turned.width, width, "orientation \(orientation)")
            XCTAssertEqual(turned.height, height, "orientation \(orientation)")
            XCTAssertEqual(turned.pixels, pixels, "orientation \(orientation)")
        }
        XCTAssertThrowsError(try image.oriented(9))
    }

    func testRankingBreaksTiesByLowerIndex() {
        XCTAssertEqual(Classifier.rankDescending([0.1, 0.5, 0.5, 0.2, 0.5], top: 4), [1, 2, 4, 3])
        XCTAssertEqual(Classifier.rankDescending([0.3, 0.2], top: 0), [])
    }

    func testSearchIndexRoundTripAndRefusal() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("compresskit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("index.bin")
        let index = SearchIndex(embeddingSpace: "space-a", precision: "fp16", embedDim: 3)
        try index.add("photo/é", embedding: [1, 0, 0])
        try index.add("photo/😀", embedding: [0, 2, 0])
        try index.add("photo/\u{0}", embedding: [0, 0, 3])
        try index.add("photo/b", embedding: [1, 1, 0])
        try index.add("photo/gone", embedding: [0, 0, 1])
        XCTAssertTrue(index.remove("photo/gone"))
        XCTAssertFalse(index.remove("photo/gone"))
        try index.save(file)

        let loaded = try SearchIndex.load(file, embeddingSpace: "space-a", precision: "fp16")
        XCTAssertEqual(loaded.keys(), index.keys())
        let hits = try loaded.search([0, 1, 0], top: 2)
        XCTAssertEqual(hits.map(\.key), ["photo/😀", "photo/b"])
        XCTAssertEqual(hits[0].cosine, 1, accuracy: 1e-6)
        XCTAssertEqual(hits[1].cosine, Float(1 / 2.0.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(loaded.retainAll(["photo/b"]), 3)
        XCTAssertEqual(loaded.keys(), ["photo/b"])

        XCTAssertThrowsError(try SearchIndex.load(file, embeddingSpace: "space-b", precision: "fp16")) { error in
            XCTAssertTrue("\(error)".contains("embedding space"), "\(error)")
        }
        XCTAssertThrowsError(try SearchIndex.load(file, embeddingSpace: "space-a", precision: "int8-weights")) { error in
            XCTAssertTrue("\(error)".contains("fp16 models"), "\(error)")
        }
        let (fresh, problem) = SearchIndex.loadOrCreate(file, embeddingSpace: "space-b", precision: "fp16", embedDim: 3)
        XCTAssertEqual(fresh.count, 0)
        XCTAssertNotNil(problem)
        let data = try Data(contentsOf: file)
        try data.prefix(data.count - 3).write(to: file)
        XCTAssertThrowsError(try SearchIndex.load(file, embeddingSpace: "space-a", precision: "fp16")) { error in
            XCTAssertTrue("\(error)".contains("ends early"), "\(error)")
        }
    }

    func testManifestPathsThatLeaveTheBundleAreRefused() throws {
        let manager = FileManager.default
        let root = manager.temporaryDirectory.appendingPathComponent("compresskit-\(UUID().uuidString)")
        try manager.createDirectory(at: root.appendingPathComponent("labels"), withIntermediateDirectories: true)
        defer { try? manager.removeItem(at: root) }
        try manager.createSymbolicLink(atPath: root.appendingPathComponent("escape").path, withDestinationPath: "/tmp")
        let canonical = URL(fileURLWithPath: CompressBundle.canonicalPath(root.path))
        let source = root.appendingPathComponent("manifest.json")
        let refused = ["/etc/passwd": "is absolute", "C:/x": "is absolute", "labels\\a.json": "backslash",
                       "labels/../../x": "'..' segment", "escape/x.json": "outside the bundle", "": "is empty"]
        for (path, reason) in refused {
            XCTAssertThrowsError(try CompressBundle.checkPath(root: canonical, source: source, what: "labels[x].file", path: path)) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(path): \(error)")
            }
        }
        XCTAssertNoThrow(try CompressBundle.checkPath(root: canonical, source: source, what: "labels[x].file", path: "labels/new.json"))
    }
}
