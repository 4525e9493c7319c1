import CompressKit
import Photos
import UIKit

/// Indexes the photo library in the background: every photo's image embedding, stored on the
/// device and reused; new photos are added as the library changes, deleted ones leave; the
/// stored index belongs to the bundle's embedding space and precision and is rebuilt for another.
@MainActor
final class PhotoIndex: NSObject, ObservableObject, PHPhotoLibraryChangeObserver {
    @Published private(set) var authorization = PHPhotoLibrary.authorizationStatus(for: .readWrite)
    @Published private(set) var indexed = 0
    @Published private(set) var total = 0
    @Published private(set) var skipped = 0
    @Published private(set) var isIndexing = false
    /// Why the stored index was rebuilt, shown once.
    @Published private(set) var rebuiltBecause: String?

    private var loaded: LoadedBundle?
    private var store: IndexStore?
    private var indexing: Task<Void, Never>?
    private var again = false
    private var observing = false

    var canRead: Bool { authorization == .authorized || authorization == .limited }

    /// Open the index of this bundle and precision, and bring it up to date when photos may be read.
    func attach(_ loaded: LoadedBundle) async {
        indexing?.cancel()
        await indexing?.value
        self.loaded = loaded
        let manifest = loaded.manifest
        let file = try? BundleLocator.supportFolder("SearchIndex").appendingPathComponent("photos.index")
        guard let file else { return }
        let (space, precision, width) = (manifest.embeddingSpace, loaded.precision, manifest.embedDim)
        // reading a large index takes a moment: not on the main thread
        let store = await Task.detached(priority: .utility) {
            IndexStore(file: file, embeddingSpace: space, precision: precision, embedDim: width)
        }.value
        self.store = store
        rebuiltBecause = store.rebuiltBecause
        indexed = await store.count
        if canRead { startObserving(); update() }
    }

    func detach() {
        indexing?.cancel()
        loaded = nil
        store = nil
    }

    func requestAccess() async {
        authorization = await PHPhotoLibrary.requestAuthorization(for: .readWrite)
        if canRead { startObserving(); update() }
    }

    private func startObserving() {
        if observing { return }
        PHPhotoLibrary.shared().register(self)
        observing = true
    }

    nonisolated func photoLibraryDidChange(_ changeInstance: PHChange) {
        Task { @MainActor in self.update() }
    }

    /// Index what is missing; a call while indexing runs one more pass afterwards.
    func update() {
        guard let loaded, let store, canRead else { return }
        if indexing != nil {
            again = true
            return
        }
        indexing = Task {
            repeat {
                again = false
                await run(loaded, store)
            } while again && !Task.isCancelled
            indexing = nil
        }
    }

    private func run(_ loaded: LoadedBundle, _ store: IndexStore) async {
        isIndexing = true
        defer { isIndexing = false }
        let library = await Task.detached(priority: .utility) { Self.libraryKeys() }.value
        _ = await store.retain(Set(library))
        let missing = await store.missing(from: library)
        total = library.count
        indexed = library.count - missing.count
        skipped = 0
        // Photos hands over a picture a few times larger than the model's, which the core then
        // resizes exactly as the reference client does
        let side = loaded.manifest.image.size * 4
        var unsaved = 0
        for key in missing {
            if Task.isCancelled { break }
            if await embed(key, loaded: loaded, store: store, side: side) {
                indexed += 1
                unsaved += 1
            } else {
                skipped += 1
            }
            if unsaved >= 50 {
                try? await store.save()
                unsaved = 0
            }
        }
        try? await store.save()
    }

    private func embed(_ key: String, loaded: LoadedBundle, store: IndexStore, side: Int) async -> Bool {
        guard let asset = PHAsset.fetchAssets(withLocalIdentifiers: [key], options: nil).firstObject,
              let picture = await Self.pictureData(asset) else { return false }
        let (data, orientation) = picture
        do {
            let decoded = try await Task.detached(priority: .utility) {
                try PictureInput.decode(data, name: key, maxShorterSide: side)
            }.value
            let result = try await loaded.encoders.embedPicture(decoded.image, orientation: orientation ?? decoded.orientation)
            try await store.add(key, embedding: result.embedding)
            return true
        } catch {
            return false
        }
    }

    /// The text query's best photos by cosine, and the text encoder's milliseconds.
    func search(_ query: String, top: Int = 60) async throws -> (hits: [SearchHit], milliseconds: Double) {
        guard let loaded, let store else { return ([], 0) }
        let (embedding, milliseconds) = try await loaded.encoders.embedText(query)
        let hits = try await store.search(embedding, top: top)
        return (hits, milliseconds)
    }

    /// Local identifiers of every picture in the library, newest first.
    nonisolated static func libraryKeys() -> [String] {
        let options = PHFetchOptions()
        options.sortDescriptors = [NSSortDescriptor(key: "creationDate", ascending: false)]
        let assets = PHAsset.fetchAssets(with: .image, options: options)
        var keys = [String]()
        keys.reserveCapacity(assets.count)
        assets.enumerateObjects { asset, _, _ in keys.append(asset.localIdentifier) }
        return keys
    }

    /// The picture file of an asset on this device (nil for one only in iCloud) and its EXIF orientation.
    nonisolated static func pictureData(_ asset: PHAsset) async -> (Data, Int?)? {
        await withCheckedContinuation { continuation in
            let options = PHImageRequestOptions()
            options.isNetworkAccessAllowed = false
            options.deliveryMode = .highQualityFormat
            options.version = .current
            PHImageManager.default().requestImageDataAndOrientation(for: asset, options: options) { data, _, orientation, _ in
                if let data {
                    continuation.resume(returning: (data, Int(orientation.rawValue)))
                } else {
                    continuation.resume(returning: nil)
                }
            }
        }
    }

    /// A thumbnail of a stored photo for the results grid.
    nonisolated static func thumbnail(_ key: String, side: CGFloat) async -> UIImage? {
        guard let asset = PHAsset.fetchAssets(withLocalIdentifiers: [key], options: nil).firstObject else { return nil }
        return await withCheckedContinuation { continuation in
            let options = PHImageRequestOptions()
            options.deliveryMode = .highQualityFormat // one answer, never a degraded one first
            options.resizeMode = .fast
            options.isNetworkAccessAllowed = true
            PHImageManager.default().requestImage(for: asset, targetSize: CGSize(width: side, height: side), contentMode: .aspectFill,
                                                  options: options) { image, _ in
                continuation.resume(returning: image)
            }
        }
    }
}
