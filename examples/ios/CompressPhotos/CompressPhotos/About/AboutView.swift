import CompressKit
import SwiftUI

/// About: the bundle (languages, embedding width, inputs, model files and sizes), the Core ML
/// precision in use, and each encoder's latency and agreement with the golden outputs measured
/// on this device.
@MainActor
struct AboutView: View {
    @EnvironmentObject private var model: AppModel
    let loaded: LoadedBundle

    @State private var latency: Encoders.Latency?
    @State private var agreement: Encoders.GoldenAgreement?
    @State private var measuring = false
    @State private var failure: String?

    private var texts: Texts { model.texts }
    private var manifest: BundleManifest { loaded.manifest }

    var body: some View {
        NavigationStack {
            List {
                Section(texts.bundleSection) {
                    row(texts.source, loaded.origin == .app ? texts.fromApp : texts.fromDocuments)
                    row(texts.languages, manifest.languages.joined(separator: ", "))
                    row(texts.embeddingWidth, "\(manifest.embedDim)")
                    row(texts.imageInput, "\(manifest.image.size) × \(manifest.image.size), \(manifest.image.resize)")
                    row(texts.textInput, "\(manifest.text.maxLength) ids, \(manifest.text.vocabSize) pieces")
                    row(texts.embeddingSpace, String(manifest.embeddingSpace.prefix(16)) + "…")
                }
                Section(texts.precision) {
                    Picker(texts.precision, selection: precisionBinding) {
                        ForEach(loaded.precisions, id: \.self) { Text($0).tag($0) }
                    }
                    .pickerStyle(.segmented)
                }
                Section(texts.modelFiles) {
                    ForEach(manifest.models, id: \.file) { entry in
                        HStack {
                            VStack(alignment: .leading) {
                                Text(entry.file).font(.callout.monospaced())
                                Text("\(entry.target) · \(entry.tower) · \(entry.precision)")
                                    .font(.caption)
                                    .foregroundStyle(.secondary)
                            }
                            Spacer()
                            if entry.target == LoadedBundle.target && entry.precision == loaded.precision {
                                Text(texts.inUse).font(.caption).foregroundStyle(.green)
                            }
                            Text(ByteCountFormatter.string(fromByteCount: manifest.bytes(of: entry.file), countStyle: .file))
                                .monospacedDigit()
                        }
                    }
                }
                Section(texts.latency) {
                    if let latency {
                        row(texts.imageEncoder, String(format: "%.2f ms", latency.imageMilliseconds))
                        row(texts.textEncoder, String(format: "%.2f ms", latency.textMilliseconds))
                    }
                    if let agreement {
                        row(texts.goldenCheck, String(format: "%@ %.5f, %@ %.5f", texts.image, agreement.imageCosine,
                                                      texts.worstText, agreement.worstTextCosine))
                    }
                    if let failure {
                        Text(failure).foregroundStyle(.red)
                    }
                    Button(measuring ? texts.measuring : texts.measure) {
                        Task { await measure() }
                    }
                    .disabled(measuring)
                }
            }
            .navigationTitle(texts.about)
            .toolbar {
                ToolbarItem(placement: .topBarTrailing) {
                    LanguageSwitch(languages: manifest.languages)
                }
            }
        }
    }

    private var precisionBinding: Binding<String> {
        Binding(
            get: { loaded.precision },
            set: { precision in
                guard precision != loaded.precision else { return }
                Task { await model.use(precision: precision) }
            }
        )
    }

    private func row(_ label: String, _ value: String) -> some View {
        LabeledContent(label) {
            Text(value).multilineTextAlignment(.trailing)
        }
    }

    /// Median latency of each encoder on the golden picture and a golden text (or a grey picture
    /// and a fixed text when the bundle has no golden files), and the golden agreement.
    private func measure() async {
        measuring = true
        failure = nil
        defer { measuring = false }
        do {
            let golden: Golden? = try manifest.golden == nil ? nil : loaded.bundle.golden()
            let size = manifest.image.size
            var picture = [UInt8](repeating: 128, count: size * size * 3)
            if let golden, let first = golden.images.first {
                let pixels = try golden.pixels(first)
                picture = Encoders.picture(fromTensor: pixels, size: size)
            }
            let sample = golden?.texts.first(where: { $0.lang == model.language.rawValue })?.text ?? "a photo of a cat"
            latency = try await loaded.encoders.measureLatency(picture: picture, text: sample)
            if let golden {
                agreement = try await loaded.encoders.goldenAgreement(golden)
            }
        } catch {
            failure = error.localizedDescription
        }
    }
}
