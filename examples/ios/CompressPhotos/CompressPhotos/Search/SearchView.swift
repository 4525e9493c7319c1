import CompressKit
import SwiftUI

/// Search: the photo library indexed in the background (progress shown), then a Chinese or
/// English query, encoded on the device, ranks the stored image embeddings by cosine.
@MainActor
struct SearchView: View {
    @EnvironmentObject private var model: AppModel
    @EnvironmentObject private var photos: PhotoIndex
    let loaded: LoadedBundle

    @State private var query = ""
    @State private var hits = [SearchHit]()
    @State private var milliseconds: Double?
    @State private var failure: String?

    private var texts: Texts { model.texts }
    private let columns = [GridItem(.adaptive(minimum: 104), spacing: 2)]

    var body: some View {
        NavigationStack {
            ScrollView {
                VStack(alignment: .leading, spacing: 12) {
                    status
                    if let milliseconds {
                        Text(texts.searchTiming(milliseconds, hits: hits.count))
                            .font(.caption)
                            .foregroundStyle(.secondary)
                    }
                    if let failure {
                        Text(failure).foregroundStyle(.red)
                    }
                    LazyVGrid(columns: columns, spacing: 2) {
                        ForEach(hits, id: \.key) { hit in
                            PhotoCell(key: hit.key, cosine: hit.cosine)
                        }
                    }
                }
                .padding(.horizontal)
            }
            .navigationTitle(texts.search)
            .searchable(text: $query, prompt: texts.queryPlaceholder)
            .onSubmit(of: .search) {
                Task { await search() }
            }
            .toolbar {
                ToolbarItem(placement: .topBarTrailing) {
                    LanguageSwitch(languages: loaded.manifest.languages)
                }
            }
        }
        .task {
            if photos.authorization == .notDetermined {
                await photos.requestAccess()
            } else {
                photos.update()
            }
        }
    }

    @ViewBuilder private var status: some View {
        if photos.authorization == .notDetermined {
            Button(texts.allowPhotos) {
                Task { await photos.requestAccess() }
            }
            .buttonStyle(.borderedProminent)
        } else if !photos.canRead {
            Text(texts.photosDenied).foregroundStyle(.secondary)
        } else {
            VStack(alignment: .leading, spacing: 4) {
                if photos.isIndexing {
                    ProgressView(value: Double(photos.indexed), total: Double(max(photos.total, 1))) {
                        Text(texts.indexing).font(.caption)
                    }
                }
                Text(texts.indexed(photos.indexed, of: photos.total))
                    .font(.caption)
                    .foregroundStyle(.secondary)
                if photos.skipped > 0 {
                    Text(texts.skipped(photos.skipped)).font(.caption).foregroundStyle(.secondary)
                }
                if let reason = photos.rebuiltBecause {
                    Text(texts.indexRebuilt + reason).font(.caption2).foregroundStyle(.orange)
                }
            }
        }
    }

    private func search() async {
        let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return }
        do {
            let result = try await photos.search(text)
            hits = result.hits
            milliseconds = result.milliseconds
            failure = nil
        } catch {
            failure = error.localizedDescription
        }
    }
}

/// One result: the photo's thumbnail and its cosine to the query.
private struct PhotoCell: View {
    let key: String
    let cosine: Float
    @State private var image: UIImage?

    var body: some View {
        ZStack(alignment: .bottomTrailing) {
            Color(uiColor: .secondarySystemBackground)
            if let image {
                Image(uiImage: image)
                    .resizable()
                    .scaledToFill()
            }
            Text(String(format: "%.3f", cosine))
                .font(.caption2.monospacedDigit())
                .padding(3)
                .background(.thinMaterial, in: RoundedRectangle(cornerRadius: 4))
                .padding(3)
        }
        .aspectRatio(1, contentMode: .fit)
        .clipped()
        .task(id: key) {
            image = await PhotoIndex.thumbnail(key, side: 240)
        }
    }
}
