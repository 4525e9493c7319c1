import Foundation

/// The 中文 / English switch: it picks the label sets (`labels/<set>.<lang>.json`), the example
/// queries and every word on screen.
enum AppLanguage: String, CaseIterable, Identifiable {
    case zh
    case en

    var id: String { rawValue }

    /// How the switch shows the language, in that language.
    var title: String {
        switch self {
        case .zh: return "中文"
        case .en: return "English"
        }
    }

    /// The device's language when it is Chinese, else English.
    static var preferred: AppLanguage {
        Locale.preferredLanguages.first.map { $0.hasPrefix("zh") } == true ? .zh : .en
    }
}

/// Every text the app shows, in the chosen language.
struct Texts {
    let language: AppLanguage

    private func pick(_ zh: String, _ en: String) -> String {
        language == .zh ? zh : en
    }

    var classify: String { pick("分类", "Classify") }
    var search: String { pick("搜索", "Search") }
    var about: String { pick("关于", "About") }
    var languageLabel: String { pick("语言", "Language") }

    var verifying: String { pick("正在校验模型包…", "Verifying the bundle…") }
    var compiling: String { pick("正在编译 Core ML 模型（仅首次）…", "Compiling the Core ML models (first launch only)…") }
    var refusedTitle: String { pick("无法使用这个模型包", "This bundle cannot be used") }
    var refusedHelp: String {
        pick("请把 runs/dc_clip/bundle 复制到本应用“文件”中的 Bundle 文件夹，或重新构建应用。",
             "Copy runs/dc_clip/bundle into this app's Documents as Bundle (Files app or Finder), or rebuild the app with a bundle.")
    }
    var retry: String { pick("重试", "Try again") }

    var labelSet: String { pick("标签集", "Label set") }
    var choosePhoto: String { pick("从相册选择", "Choose a photo") }
    var takePhoto: String { pick("拍照", "Take a photo") }
    var noPicture: String { pick("选择或拍摄一张照片，得到前 5 个类别。", "Pick or take a picture to see its top 5 classes.") }
    var modelSees: String { pick("模型看到的画面", "What the model sees") }
    func timing(preprocess: Double, model: Double) -> String {
        pick(String(format: "预处理 %.1f ms，图像编码器 %.1f ms", preprocess, model),
             String(format: "preprocessing %.1f ms, image encoder %.1f ms", preprocess, model))
    }
    var cosine: String { pick("余弦", "cosine") }

    var allowPhotos: String { pick("允许访问照片以建立索引", "Allow photo access to build the index") }
    var photosDenied: String {
        pick("没有照片访问权限。请在“设置”中允许本应用访问照片。", "No access to photos. Allow it for this app in Settings.")
    }
    func indexed(_ done: Int, of total: Int) -> String {
        pick("已索引 \(done) / \(total) 张照片", "\(done) of \(total) photos indexed")
    }
    var indexing: String { pick("正在后台建立索引…", "Indexing in the background…") }
    func skipped(_ count: Int) -> String {
        pick("\(count) 张照片无法读取（例如只在 iCloud 中）", "\(count) photos could not be read (for example iCloud-only)")
    }
    var queryPlaceholder: String { pick("输入中文或英文，例如：海边的日落", "Type in English or Chinese, e.g. a sunset at the beach") }
    func searchTiming(_ ms: Double, hits: Int) -> String {
        pick(String(format: "文本编码器 %.1f ms，%d 个结果", ms, hits), String(format: "text encoder %.1f ms, %d results", ms, hits))
    }
    var indexRebuilt: String { pick("索引已重建：", "Index rebuilt: ") }

    var bundleSection: String { pick("模型包", "Bundle") }
    var source: String { pick("来源", "Source") }
    var fromApp: String { pick("应用内置", "inside the app") }
    var fromDocuments: String { pick("文稿/Bundle", "Documents/Bundle") }
    var languages: String { pick("语言", "Languages") }
    var embeddingWidth: String { pick("嵌入维度", "Embedding width") }
    var imageInput: String { pick("图像输入", "Image input") }
    var textInput: String { pick("文本输入", "Text input") }
    var embeddingSpace: String { pick("嵌入空间", "Embedding space") }
    var precision: String { pick("精度（Core ML）", "Precision (Core ML)") }
    var modelFiles: String { pick("模型文件", "Model files") }
    var inUse: String { pick("使用中", "in use") }
    var latency: String { pick("本机延迟", "Latency on this device") }
    var measure: String { pick("测量", "Measure") }
    var measuring: String { pick("正在测量…", "Measuring…") }
    var imageEncoder: String { pick("图像编码器", "Image encoder") }
    var textEncoder: String { pick("文本编码器", "Text encoder") }
    var goldenCheck: String { pick("与参考输出的一致性（余弦）", "Agreement with the golden outputs (cosine)") }
    var image: String { pick("图像", "image") }
    var worstText: String { pick("最差文本", "worst text") }
}
