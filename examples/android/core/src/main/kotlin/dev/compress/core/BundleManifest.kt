package dev.compress.core

/** How a picture becomes the image model's input (`image` in manifest.json). */
data class ImageRule(
    val size: Int,
    val mean: FloatArray,
    val std: FloatArray,
    val resize: String,
    val interpolation: String,
)

/** How a text becomes the text model's input (`text` in manifest.json). */
data class TextRule(
    val tokenizer: String,
    val tokenizerJson: String,
    val maxLength: Int,
    val vocabSize: Int,
    val padId: Int,
    val unkId: Int,
    val bosId: Int,
    val eosId: Int,
    val truncation: String,
)

/** One model file: which target runs it, which tower it is and in what precision. */
data class ModelEntry(
    val target: String,
    val tower: String,
    val precision: String,
    val file: String,
    val inputShape: List<Int>,
    val inputDtype: String,
)

/** One label set in one language: `labels/<set>.<lang>.json`. */
data class LabelEntry(val set: String, val lang: String, val file: String, val classes: Int)

/** One listed file with the size and sha256 it must have. */
data class FileEntry(val path: String, val sha256: String, val bytes: Long)

/** manifest.json of a bundle of [BundleManifest.SCHEMA_VERSION]; see docs/bundle-format.md. */
data class BundleManifest(
    val schemaVersion: Int,
    val embedDim: Int,
    val languages: List<String>,
    val logitScale: Double,
    val embeddingSpace: String,
    val image: ImageRule,
    val text: TextRule,
    val models: List<ModelEntry>,
    val labels: List<LabelEntry>,
    val files: List<FileEntry>,
    val golden: String?,
    val report: String?,
) {
    fun model(target: String, tower: String, precision: String): ModelEntry =
        models.firstOrNull { it.target == target && it.tower == tower && it.precision == precision }
            ?: throw CompressError(
                "$MANIFEST: no $target $tower model in $precision; the bundle has: " +
                    (models.filter { it.target == target && it.tower == tower }.map { it.precision }.distinct().joinToString().ifEmpty { "none" }),
            )

    /** The precisions in which this bundle has both towers for [target]. */
    fun precisions(target: String): List<String> {
        val image = models.filter { it.target == target && it.tower == "image" }.map { it.precision }.toSet()
        return models.filter { it.target == target && it.tower == "text" }.map { it.precision }.filter { it in image }.distinct()
    }

    fun labelEntry(set: String, lang: String): LabelEntry =
        labels.firstOrNull { it.set == set && it.lang == lang }
            ?: throw CompressError(
                "$MANIFEST: no label set '$set' in '$lang'; the bundle has: " +
                    labels.joinToString { "${it.set} (${it.lang})" }.ifEmpty { "none" },
            )

    fun fileEntry(path: String): FileEntry? = files.firstOrNull { it.path == path }

    /** Every path the manifest points at outside its file list, with what it is. */
    fun referencedPaths(): List<Pair<String, String>> = buildList {
        add("text.tokenizer" to text.tokenizer)
        add("text.tokenizer_json" to text.tokenizerJson)
        models.forEach { add("models[${it.target} ${it.tower} ${it.precision}].file" to it.file) }
        labels.forEach { add("labels[${it.set}.${it.lang}].file" to it.file) }
        golden?.let { add("golden" to it) }
        report?.let { add("report" to it) }
    }

    companion object {
        const val MANIFEST = "manifest.json"
        const val FORMAT = "compress-bundle"
        const val SCHEMA_VERSION = 2

        /** Read the fields this core uses; the format and schema version are checked first. */
        fun parse(json: JsonFields): BundleManifest {
            val format = json.stringOrNull("format")
            if (format != FORMAT) throw CompressError("${json.source}: format is ${format?.let { "'$it'" } ?: "missing"}, not '$FORMAT'")
            val version = if (json.has("schema_version")) json.int("schema_version") else null
            if (version != SCHEMA_VERSION) {
                throw CompressError("${json.source}: schema_version ${version ?: "missing"} is not supported (this app reads $SCHEMA_VERSION)")
            }
            val image = json.obj("image")
            val text = json.obj("text")
            return BundleManifest(
                schemaVersion = version,
                embedDim = json.int("embed_dim"),
                languages = json.strings("languages"),
                logitScale = json.double("logit_scale"),
                embeddingSpace = json.string("embedding_space"),
                image = ImageRule(
                    size = image.int("size"),
                    mean = image.floats("mean"),
                    std = image.floats("std"),
                    resize = image.string("resize"),
                    interpolation = image.string("interpolation"),
                ),
                text = TextRule(
                    tokenizer = text.string("tokenizer"),
                    tokenizerJson = text.string("tokenizer_json"),
                    maxLength = text.int("max_length"),
                    vocabSize = text.int("vocab_size"),
                    padId = text.int("pad_id"),
                    unkId = text.int("unk_id"),
                    bosId = text.int("bos_id"),
                    eosId = text.int("eos_id"),
                    truncation = text.string("truncation"),
                ),
                models = json.objects("models").map {
                    val input = it.obj("input")
                    ModelEntry(
                        target = it.string("target"),
                        tower = it.string("tower"),
                        precision = it.string("precision"),
                        file = it.string("file"),
                        inputShape = input.ints("shape").toList(),
                        inputDtype = input.string("dtype"),
                    )
                },
                labels = json.objects("labels").map {
                    LabelEntry(set = it.string("set"), lang = it.string("lang"), file = it.string("file"), classes = it.int("classes"))
                },
                files = json.objects("files").map { FileEntry(path = it.string("path"), sha256 = it.string("sha256"), bytes = it.long("bytes")) },
                golden = json.stringOrNull("golden"),
                report = json.stringOrNull("report"),
            )
        }
    }
}
