package dev.compress.app

/** The two interface languages; switching also switches label sets and prompts to that language. */
enum class Language(val code: String, val switchLabel: String) {
    English("en", "English"),
    Chinese("zh", "中文"),
}

/** Interface strings in the chosen language (the bundle's label sets carry their own class names). */
data class UiText(
    val classify: String,
    val search: String,
    val about: String,
    val pickPhoto: String,
    val takePhoto: String,
    val labelSet: String,
    val inference: String,
    val noPicture: String,
    val indexLibrary: String,
    val indexing: String,
    val indexed: String,
    val rebuilt: String,
    val query: String,
    val searchAction: String,
    val needPermission: String,
    val precision: String,
    val languages: String,
    val embedding: String,
    val modelFiles: String,
    val latency: String,
    val measure: String,
    val imageEncoder: String,
    val textEncoder: String,
    val refused: String,
    val source: String,
    val loading: String,
) {
    companion object {
        fun of(language: Language): UiText = when (language) {
            Language.English -> UiText(
                classify = "Classify", search = "Search", about = "About",
                pickPhoto = "Photo library", takePhoto = "Camera", labelSet = "Labels",
                inference = "image encoder", noPicture = "Pick or take a picture.",
                indexLibrary = "Index photo library", indexing = "Indexing", indexed = "photos indexed",
                rebuilt = "The stored index belonged to another bundle or precision and is being rebuilt",
                query = "Describe a photo (中文 or English)", searchAction = "Search",
                needPermission = "Allow access to photos to build the search index.",
                precision = "Precision", languages = "Languages", embedding = "Embedding width",
                modelFiles = "Model files", latency = "Latency on this phone", measure = "Measure",
                imageEncoder = "Image encoder", textEncoder = "Text encoder",
                refused = "This bundle cannot be used", source = "Bundle", loading = "Verifying the bundle…",
            )
            Language.Chinese -> UiText(
                classify = "分类", search = "搜索", about = "关于",
                pickPhoto = "相册", takePhoto = "拍照", labelSet = "标签集",
                inference = "图像编码器", noPicture = "请选择或拍摄一张照片。",
                indexLibrary = "为相册建立索引", indexing = "正在建立索引", indexed = "张照片已索引",
                rebuilt = "已保存的索引属于其他模型包或精度，正在重建",
                query = "描述一张照片（中文或 English）", searchAction = "搜索",
                needPermission = "请允许访问照片以建立搜索索引。",
                precision = "精度", languages = "语言", embedding = "向量维度",
                modelFiles = "模型文件", latency = "本机延迟", measure = "测量",
                imageEncoder = "图像编码器", textEncoder = "文本编码器",
                refused = "无法使用此模型包", source = "模型包", loading = "正在校验模型包…",
            )
        }
    }
}
