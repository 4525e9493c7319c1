import CompressKit
import Foundation

/// The app's state: the bundle (loading, ready or refused), the language and the precision in use.
@MainActor
final class AppModel: ObservableObject {
    enum State {
        case loading(LoadedBundle.Phase)
        case ready(LoadedBundle)
        case refused(String)
    }

    private static let languageKey = "language"
    private static let precisionKey = "precision"

    @Published private(set) var state: State = .loading(.verifying)
    @Published var language: AppLanguage {
        didSet { UserDefaults.standard.set(language.rawValue, forKey: Self.languageKey) }
    }

    let photoIndex = PhotoIndex()

    init() {
        let stored = UserDefaults.standard.string(forKey: Self.languageKey).flatMap(AppLanguage.init(rawValue:))
        language = stored ?? AppLanguage.preferred
    }

    var texts: Texts { Texts(language: language) }

    var loaded: LoadedBundle? {
        if case .ready(let loaded) = state { return loaded }
        return nil
    }

    /// Verify and load the bundle (again); a refusal is shown on screen with its reason.
    func load() async {
        state = .loading(.verifying)
        let preferred = UserDefaults.standard.string(forKey: Self.precisionKey)
        do {
            let loaded = try await Task.detached(priority: .userInitiated) {
                try await LoadedBundle.load(preferredPrecision: preferred) { phase in
                    Task { @MainActor in self.show(phase) }
                }
            }.value
            state = .ready(loaded)
            let languages = loaded.manifest.languages
            if !languages.contains(language.rawValue), let first = languages.compactMap(AppLanguage.init(rawValue:)).first {
                language = first
            }
            await photoIndex.attach(loaded)
        } catch {
            photoIndex.detach()
            state = .refused(error.localizedDescription)
        }
    }

    private func show(_ phase: LoadedBundle.Phase) {
        if case .loading = state { state = .loading(phase) }
    }

    /// Switch to another Core ML precision of the bundle; the photo index follows (it is rebuilt
    /// when it was made with other models).
    func use(precision: String) async {
        UserDefaults.standard.set(precision, forKey: Self.precisionKey)
        await load()
    }
}
