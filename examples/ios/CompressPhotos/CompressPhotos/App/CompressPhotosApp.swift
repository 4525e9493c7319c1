import SwiftUI

@main
struct CompressPhotosApp: App {
    @StateObject private var model = AppModel()

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .environmentObject(model.photoIndex)
                .task { await model.load() }
        }
    }
}

/// The three screens once the bundle is ready; before that, its progress or the reason it was refused.
struct RootView: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        switch model.state {
        case .loading(let phase):
            VStack(spacing: 16) {
                ProgressView()
                Text(phase == .verifying ? model.texts.verifying : model.texts.compiling)
                    .foregroundStyle(.secondary)
            }
        case .refused(let reason):
            RefusedView(reason: reason)
        case .ready(let loaded):
            TabView {
                ClassifyView(loaded: loaded)
                    .tabItem { Label(model.texts.classify, systemImage: "viewfinder") }
                SearchView(loaded: loaded)
                    .tabItem { Label(model.texts.search, systemImage: "magnifyingglass") }
                AboutView(loaded: loaded)
                    .tabItem { Label(model.texts.about, systemImage: "info.circle") }
            }
        }
    }
}

struct RefusedView: View {
    @EnvironmentObject private var model: AppModel
    let reason: String

    var body: some View {
        VStack(alignment: .leading, spacing: 16) {
            Label(model.texts.refusedTitle, systemImage: "exclamationmark.shield")
                .font(.title2.bold())
                .foregroundStyle(.red)
            Text(reason)
                .font(.callout.monospaced())
                .textSelection(.enabled)
            Text(model.texts.refusedHelp)
                .foregroundStyle(.secondary)
            Button(model.texts.retry) {
                Task { await model.load() }
            }
            .buttonStyle(.borderedProminent)
            Spacer()
        }
        .padding()
    }
}

/// The 中文 / English switch shown in every screen's toolbar.
struct LanguageSwitch: View {
    @EnvironmentObject private var model: AppModel
    let languages: [String]

    var body: some View {
        Picker(model.texts.languageLabel, selection: $model.language) {
            ForEach(AppLanguage.allCases.filter { languages.contains($0.rawValue) }) { language in
                Text(language.title).tag(language)
            }
        }
        .pickerStyle(.segmented)
        .fixedSize()
    }
}
