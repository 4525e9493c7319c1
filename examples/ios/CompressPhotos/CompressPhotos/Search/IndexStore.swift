import CompressKit
import Foundation

/// The photo library's image embeddings on disk (`SearchIndex` of CompressKit), owned by one actor
/// so indexing and searching never touch it at the same time. The file carries the bundle's
/// `embedding_space` and the precision: opened for another bundle or precision, it starts empty.
actor IndexStore {
    private let file: URL
    private let index: SearchIndex
    /// Why a stored index was not used (nil when it was, or when there was none).
    let rebuiltBecause: String?

    init(file: URL, embeddingSpace: String, precision: String, embedDim: Int) {
        self.file = file
        let existed = FileManager.default.fileExists(atPath: file.path)
        let (index, problem) = SearchIndex.loadOrCreate(file, embeddingSpace: embeddingSpace, precision: precision, embedDim: embedDim)
        self.index = index
        rebuiltBecause = existed ? problem : nil
    }

    var count: Int { index.count }

    /// The keys of `library` not in the index yet, in library order.
    func missing(from library: [String]) -> [String] {
        library.filter { !index.contains($0) }
    }

    /// Forget photos no longer in the library; returns how many went.
    func retain(_ library: Set<String>) -> Int {
        index.retainAll(library)
    }

    func add(_ key: String, embedding: [Float]) throws {
        try index.add(key, embedding: embedding)
    }

    func save() throws {
        try index.save(file)
    }

    func search(_ query: [Float], top: Int) throws -> [SearchHit] {
        try index.search(query, top: top)
    }
}
