import CompressKit
import Foundation

/// Where the bundle came from: copied into the app at build time, or put into Documents later.
enum BundleOrigin {
    case documents
    case app
}

/// Finds the bundle folder: `Documents/Bundle` (Files app, Finder file sharing or `xcrun simctl`)
/// wins over the `Bundle/` folder the build copied into the app, so a new bundle needs no rebuild.
enum BundleLocator {
    static let folderName = "Bundle"

    static var documentsFolder: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0].appendingPathComponent(folderName, isDirectory: true)
    }

    static func locate() throws -> (folder: URL, origin: BundleOrigin) {
        let manager = FileManager.default
        let documents = documentsFolder
        if manager.fileExists(atPath: documents.appendingPathComponent(BundleManifest.manifestFile).path) {
            return (documents, .documents)
        }
        if let inApp = Bundle.main.url(forResource: folderName, withExtension: nil),
           manager.fileExists(atPath: inApp.appendingPathComponent(BundleManifest.manifestFile).path) {
            return (inApp, .app)
        }
        throw CompressError("no bundle: neither \(documents.path) nor the app holds a folder with \(BundleManifest.manifestFile)")
    }

    /// App-private folders for what the app derives from a bundle.
    static func supportFolder(_ name: String) throws -> URL {
        let base = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        let folder = base.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }
}
