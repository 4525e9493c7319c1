package dev.compress.app

import android.app.Application
import android.net.Uri
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import dev.compress.core.Bundle
import dev.compress.core.CompressError
import dev.compress.core.ImagePreprocessor
import dev.compress.core.Prediction
import dev.compress.core.SearchHit
import dev.compress.core.SearchIndex
import dev.compress.core.UnigramTokenizer
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.io.File
import java.util.concurrent.Executors

/** What the bundle is: still being verified, ready, or refused with the reason shown on screen. */
sealed interface BundleState {
    data object Loading : BundleState
    data class Ready(val bundle: Bundle, val source: String) : BundleState
    data class Refused(val reason: String) : BundleState
}

data class ClassifyState(
    val labelSet: String? = null,
    val picture: Uri? = null,
    val predictions: List<Prediction> = emptyList(),
    val millis: Double? = null,
    val error: String? = null,
    val busy: Boolean = false,
)

data class SearchState(
    val indexed: Int = 0,
    val total: Int = 0,
    val indexing: Boolean = false,
    val rebuiltBecause: String? = null,
    val query: String = "",
    val hits: List<SearchHit> = emptyList(),
    val millis: Double? = null,
    val error: String? = null,
)

data class LatencyState(val imageMillis: Double? = null, val textMillis: Double? = null, val measuring: Boolean = false)

/**
 * The app's state and every call into the core and the models. Models run on one dedicated
 * thread (ExecuTorch modules are used from one thread at a time); pictures decode on the IO pool.
 */
class AppViewModel(application: Application) : AndroidViewModel(application) {
    private val models = Executors.newSingleThreadExecutor { Thread(it, "models") }.asCoroutineDispatcher()
    private val decoder = PictureDecoder(application.contentResolver)
    private val library = PhotoLibrary(application.contentResolver)
    private val indexFile = File(application.filesDir, "search/photos.index")

    private val _bundle = MutableStateFlow<BundleState>(BundleState.Loading)
    val bundle: StateFlow<BundleState> = _bundle.asStateFlow()
    private val _language = MutableStateFlow(Language.English)
    val language: StateFlow<Language> = _language.asStateFlow()
    private val _precision = MutableStateFlow("fp32")
    val precision: StateFlow<String> = _precision.asStateFlow()
    private val _classify = MutableStateFlow(ClassifyState())
    val classify: StateFlow<ClassifyState> = _classify.asStateFlow()
    private val _search = MutableStateFlow(SearchState())
    val search: StateFlow<SearchState> = _search.asStateFlow()
    private val _latency = MutableStateFlow(LatencyState())
    val latency: StateFlow<LatencyState> = _latency.asStateFlow()

    private var tokenizer: UnigramTokenizer? = null
    private var preprocessor: ImagePreprocessor? = null
    private var encoders: Encoders? = null
    private var index: SearchIndex? = null
    private var indexing: Job? = null

    init {
        viewModelScope.launch {
            val state = withContext(Dispatchers.IO) {
                when (val result = BundleStore(application).open()) {
                    is BundleStore.Result.Refused -> BundleState.Refused(result.reason)
                    is BundleStore.Result.Ready -> try {
                        tokenizer = result.bundle.tokenizer()
                        preprocessor = result.bundle.preprocessor()
                        BundleState.Ready(result.bundle, result.source)
                    } catch (e: CompressError) {
                        BundleState.Refused(e.message ?: e.toString())
                    }
                }
            }
            _bundle.value = state
            if (state is BundleState.Ready) {
                _precision.value = state.bundle.manifest.precisions(Encoders.TARGET).firstOrNull() ?: "fp32"
                chooseLabelSet(state.bundle)
                openIndex(state.bundle)
            }
        }
    }

    private fun ready(): Bundle? = (_bundle.value as? BundleState.Ready)?.bundle

    /** The label sets of the current language (by name). */
    fun labelSets(): List<String> {
        val bundle = ready() ?: return emptyList()
        return bundle.manifest.labels.filter { it.lang == _language.value.code }.map { it.set }.distinct()
    }

    private fun chooseLabelSet(bundle: Bundle) {
        val sets = bundle.manifest.labels.filter { it.lang == _language.value.code }.map { it.set }
        _classify.update { if (it.labelSet in sets) it else it.copy(labelSet = sets.firstOrNull(), predictions = emptyList()) }
    }

    fun setLanguage(language: Language) {
        _language.value = language
        ready()?.let { bundle ->
            chooseLabelSet(bundle)
            _classify.value.picture?.let { classify(it) }
        }
    }

    fun setPrecision(precision: String) {
        if (precision == _precision.value) return
        _precision.value = precision
        val bundle = ready() ?: return
        indexing?.cancel()
        viewModelScope.launch(models) {
            encoders?.close()
            encoders = null
            openIndex(bundle)
        }
        _classify.value.picture?.let { classify(it) }
    }

    fun setLabelSet(name: String) {
        _classify.update { it.copy(labelSet = name) }
        _classify.value.picture?.let { classify(it) }
    }

    /** The encoders of the current precision, loaded on first use (on the models thread). */
    private fun encoders(bundle: Bundle): Encoders {
        val current = encoders
        if (current != null && current.precision == _precision.value) return current
        current?.close()
        return Encoders(bundle, _precision.value).also { encoders = it }
    }

    fun classify(picture: Uri) {
        val bundle = ready() ?: return
        val labelSet = _classify.value.labelSet ?: return
        val lang = _language.value.code
        _classify.update { it.copy(picture = picture, busy = true, error = null) }
        viewModelScope.launch {
            try {
                val decoded = withContext(Dispatchers.IO) { decoder.decode(picture, minSide = CLASSIFY_MIN_SIDE_FACTOR * bundle.manifest.image.size) }
                val pixels = withContext(Dispatchers.Default) { preprocessor!!.pixels(decoded.image, decoded.orientation) }
                val (predictions, millis) = withContext(models) {
                    val timed = encoders(bundle).embedImage(pixels)
                    bundle.classifier(labelSet, lang).classify(timed.embedding, TOP_K) to timed.millis
                }
                _classify.update { it.copy(predictions = predictions, millis = millis, busy = false) }
            } catch (e: CompressError) {
                _classify.update { it.copy(error = e.message, busy = false, predictions = emptyList()) }
            } catch (e: RuntimeException) { // ExecuTorch reports load and run failures as runtime exceptions
                _classify.update { it.copy(error = e.message ?: e.toString(), busy = false, predictions = emptyList()) }
            }
        }
    }

    /** Load the stored index when it belongs to this bundle's embedding space and precision, else start a new one. */
    private suspend fun openIndex(bundle: Bundle) = withContext(models) {
        val manifest = bundle.manifest
        val existed = indexFile.isFile
        val (loaded, reason) = SearchIndex.loadOrCreate(indexFile, manifest.embeddingSpace, _precision.value, manifest.embedDim)
        index = loaded
        _search.update { it.copy(indexed = loaded.size, total = 0, rebuiltBecause = if (existed) reason else null, hits = emptyList()) }
    }

    /** Index new photos of the library in the background; photos gone from the library leave the index. */
    fun indexLibrary() {
        val bundle = ready() ?: return
        if (indexing?.isActive == true) return
        indexing = viewModelScope.launch {
            _search.update { it.copy(indexing = true, error = null) }
            try {
                val photos = withContext(Dispatchers.IO) { library.photos() }
                val todo = withContext(models) {
                    val stored = index ?: return@withContext emptyList<LibraryPhoto>()
                    stored.retainAll(photos.map { it.key }.toSet())
                    photos.filter { it.key !in stored }
                }
                _search.update { it.copy(total = photos.size, indexed = photos.size - todo.size) }
                for ((done, photo) in todo.withIndex()) {
                    if (!isActive) break
                    val decoded = try {
                        withContext(Dispatchers.IO) { decoder.decode(photo.uri, minSide = INDEX_MIN_SIDE_FACTOR * bundle.manifest.image.size) }
                    } catch (e: CompressError) {
                        continue // a photo the phone cannot decode is left out of the index
                    }
                    val pixels = withContext(Dispatchers.Default) { preprocessor!!.pixels(decoded.image, decoded.orientation) }
                    withContext(models) {
                        index?.add(photo.key, encoders(bundle).embedImage(pixels).embedding)
                        if ((done + 1) % SAVE_EVERY == 0) index?.save(indexFile)
                    }
                    _search.update { it.copy(indexed = photos.size - todo.size + done + 1) }
                }
                withContext(models) { index?.save(indexFile) }
            } catch (e: CompressError) {
                _search.update { it.copy(error = e.message) }
            } catch (e: SecurityException) {
                _search.update { it.copy(error = e.message) }
            } finally {
                _search.update { it.copy(indexing = false) }
            }
        }
    }

    fun setQuery(query: String) = _search.update { it.copy(query = query) }

    fun runQuery() {
        val bundle = ready() ?: return
        val query = _search.value.query
        viewModelScope.launch {
            try {
                val (hits, millis) = withContext(models) {
                    val timed = encoders(bundle).embedText(tokenizer!!.encode(query))
                    (index?.search(timed.embedding, SEARCH_RESULTS) ?: emptyList()) to timed.millis
                }
                _search.update { it.copy(hits = hits, millis = millis, error = null) }
            } catch (e: CompressError) {
                _search.update { it.copy(error = e.message) }
            }
        }
    }

    /** Example queries in the current language: the first prompt template of a label set filled with its classes. */
    fun suggestions(): List<String> {
        val bundle = ready() ?: return emptyList()
        val entry = bundle.manifest.labels.firstOrNull { it.lang == _language.value.code } ?: return emptyList()
        val labels = bundle.labelSet(entry.set, entry.lang)
        val template = labels.templates.firstOrNull() ?: "{}"
        return labels.classnames.take(SUGGESTIONS).map { template.replace("{}", it) }
    }

    /** Median milliseconds of each encoder over a few runs on the golden inputs (or a grey picture and an empty text). */
    fun measureLatency() {
        val bundle = ready() ?: return
        _latency.update { it.copy(measuring = true) }
        viewModelScope.launch {
            try {
                val (image, text) = withContext(models) {
                    val encoders = encoders(bundle)
                    val golden = runCatching { bundle.golden() }.getOrNull()
                    val pixels = golden?.images?.firstOrNull()?.let { golden.pixels(it) }
                        ?: FloatArray(3 * bundle.manifest.image.size * bundle.manifest.image.size) { 0.5f }
                    val ids = golden?.texts?.firstOrNull()?.ids ?: tokenizer!!.encode("")
                    encoders.embedImage(pixels)
                    encoders.embedText(ids) // warm-up runs
                    val imageRuns = List(LATENCY_RUNS) { encoders.embedImage(pixels).millis }.sorted()
                    val textRuns = List(LATENCY_RUNS) { encoders.embedText(ids).millis }.sorted()
                    imageRuns[LATENCY_RUNS / 2] to textRuns[LATENCY_RUNS / 2]
                }
                _latency.value = LatencyState(image, text, measuring = false)
            } catch (e: CompressError) {
                _latency.value = LatencyState(measuring = false)
                _search.update { it.copy(error = e.message) }
            }
        }
    }

    override fun onCleared() {
        indexing?.cancel()
        encoders?.close()
        models.close()
    }

    companion object {
        const val TOP_K = 5
        const val SEARCH_RESULTS = 30
        const val SUGGESTIONS = 4
        const val SAVE_EVERY = 25
        const val LATENCY_RUNS = 9

        /** Classify decodes photos subsampled by powers of two down to a shorter side of at least 4 x the model size. */
        const val CLASSIFY_MIN_SIDE_FACTOR = 4

        /** Indexing a library decodes down to 2 x the model size, for speed. */
        const val INDEX_MIN_SIDE_FACTOR = 2
    }
}
