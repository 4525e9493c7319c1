import CompressKit
import PhotosUI
import SwiftUI

/// Classify: a picture from the photo library or the camera, its zero-shot top 5 against one of
/// the bundle's label sets in the chosen language, with scores and the measured milliseconds.
@MainActor
struct ClassifyView: View {
    @EnvironmentObject private var model: AppModel
    let loaded: LoadedBundle

    @State private var pickerItem: PhotosPickerItem?
    @State private var showCamera = false
    @State private var labelSet = ""
    @State private var picture: UIImage?
    @State private var embedded: Encoders.PictureEmbedding?
    @State private var predictions = [Prediction]()
    @State private var failure: String?
    @State private var busy = false

    private var texts: Texts { model.texts }
    private var labelSets: [String] { loaded.manifest.labelSets(lang: model.language.rawValue) }

    var body: some View {
        NavigationStack {
            List {
                Section {
                    Picker(texts.labelSet, selection: $labelSet) {
                        ForEach(labelSets, id: \.self) { Text($0).tag($0) }
                    }
                    HStack {
                        PhotosPicker(selection: $pickerItem, matching: .images) {
                            Label(texts.choosePhoto, systemImage: "photo.on.rectangle")
                        }
                        Spacer()
                        if CameraPicker.isAvailable {
                            Button {
                                showCamera = true
                            } label: {
                                Label(texts.takePhoto, systemImage: "camera")
                            }
                        }
                    }
                    .buttonStyle(.borderless)
                }
                if busy {
                    ProgressView()
                }
                if let failure {
                    Text(failure).foregroundStyle(.red)
                }
                if let picture, let embedded {
                    Section {
                        pictures(picture, embedded)
                        ForEach(predictions, id: \.index) { prediction in
                            PredictionRow(prediction: prediction, best: predictions.first?.probability ?? 1, cosineLabel: texts.cosine)
                        }
                    } footer: {
                        Text(texts.timing(preprocess: embedded.preprocessMilliseconds, model: embedded.modelMilliseconds))
                    }
                } else if !busy && failure == nil {
                    Text(texts.noPicture).foregroundStyle(.secondary)
                }
            }
            .navigationTitle(texts.classify)
            .toolbar {
                ToolbarItem(placement: .topBarTrailing) {
                    LanguageSwitch(languages: loaded.manifest.languages)
                }
            }
        }
        .fullScreenCover(isPresented: $showCamera) {
            CameraPicker { image in
                Task { await classify(camera: image) }
            }
            .ignoresSafeArea()
        }
        .onAppear { chooseLabelSet() }
        .onChange(of: model.language) { _, _ in
            chooseLabelSet()
            rank()
        }
        .onChange(of: labelSet) { _, _ in rank() }
        .onChange(of: pickerItem) { _, item in
            guard let item else { return }
            Task { await classify(item: item) }
        }
    }

    private func pictures(_ picture: UIImage, _ embedded: Encoders.PictureEmbedding) -> some View {
        HStack(alignment: .bottom, spacing: 12) {
            Image(uiImage: picture)
                .resizable()
                .scaledToFit()
                .frame(maxHeight: 220)
                .clipShape(RoundedRectangle(cornerRadius: 8))
            if let seen = PictureInput.image(fromRGB: embedded.modelPicture, size: loaded.manifest.image.size) {
                VStack {
                    Image(uiImage: seen)
                        .interpolation(.none)
                        .resizable()
                        .frame(width: 64, height: 64)
                    Text(texts.modelSees).font(.caption2).foregroundStyle(.secondary)
                }
            }
        }
    }

    /// Keep the chosen label set when the new language has it, else take its first.
    private func chooseLabelSet() {
        if !labelSets.contains(labelSet) {
            labelSet = labelSets.first ?? ""
        }
    }

    private func classify(item: PhotosPickerItem) async {
        await run {
            guard let data = try await item.loadTransferable(type: Data.self) else {
                throw CompressError("the photo library gave no picture data")
            }
            let decoded = try await Task.detached(priority: .userInitiated) {
                try PictureInput.decode(data, name: "picked photo")
            }.value
            return (UIImage(data: data), decoded.image, decoded.orientation)
        }
    }

    private func classify(camera image: UIImage) async {
        await run {
            let decoded = try await Task.detached(priority: .userInitiated) { try PictureInput.decode(image) }.value
            return (image, decoded.image, decoded.orientation)
        }
    }

    private func run(_ decode: () async throws -> (UIImage?, ArgbImage, Int)) async {
        busy = true
        failure = nil
        defer { busy = false }
        do {
            let (preview, pixels, orientation) = try await decode()
            embedded = try await loaded.encoders.embedPicture(pixels, orientation: orientation)
            picture = preview ?? PictureInput.image(fromRGB: embedded?.modelPicture ?? [], size: loaded.manifest.image.size)
            rank()
        } catch {
            failure = error.localizedDescription
            embedded = nil
            predictions = []
        }
    }

    private func rank() {
        guard let embedded, !labelSet.isEmpty else { return }
        do {
            predictions = try loaded.classifier(set: labelSet, lang: model.language.rawValue).classify(embedded.embedding, top: 5)
        } catch {
            failure = error.localizedDescription
            predictions = []
        }
    }
}

private struct PredictionRow: View {
    let prediction: Prediction
    let best: Double
    let cosineLabel: String

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            HStack {
                Text(prediction.className).font(.body.weight(.medium))
                Spacer()
                Text(prediction.probability, format: .percent.precision(.fractionLength(1)))
                    .monospacedDigit()
            }
            ProgressView(value: prediction.probability, total: max(best, 1e-9))
            Text("\(cosineLabel) \(String(format: "%+.4f", prediction.cosine))")
                .font(.caption)
                .foregroundStyle(.secondary)
                .monospacedDigit()
        }
    }
}
