package dev.compress.app.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.compress.app.AppViewModel
import dev.compress.app.BundleState
import dev.compress.app.Encoders
import dev.compress.app.UiText

/** About: the bundle (languages, embedding width, model files and sizes, precision) and measured latency. */
@Composable
fun AboutScreen(viewModel: AppViewModel, state: BundleState.Ready, text: UiText) {
    val precision by viewModel.precision.collectAsStateWithLifecycle()
    val latency by viewModel.latency.collectAsStateWithLifecycle()
    val manifest = state.bundle.manifest
    Column(Modifier.fillMaxWidth().verticalScroll(rememberScrollState()).padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Fact(text.source, state.source)
        Fact(text.languages, manifest.languages.joinToString(" · "))
        Fact(text.embedding, manifest.embedDim.toString())
        Fact(text.precision, precision)
        Fact("embedding_space", manifest.embeddingSpace.take(16) + "…")
        HorizontalDivider()
        Text(text.modelFiles, style = MaterialTheme.typography.titleMedium)
        manifest.models.filter { it.target == Encoders.TARGET }.forEach { model ->
            val bytes = manifest.fileEntry(model.file)?.bytes ?: 0L
            Fact("${model.tower} · ${model.precision}", "${model.file}  %.2f MB".format(bytes / 1e6))
        }
        HorizontalDivider()
        Text(text.latency, style = MaterialTheme.typography.titleMedium)
        Fact(text.imageEncoder, latency.imageMillis?.let { "%.1f ms".format(it) } ?: "–")
        Fact(text.textEncoder, latency.textMillis?.let { "%.1f ms".format(it) } ?: "–")
        Button(enabled = !latency.measuring, onClick = viewModel::measureLatency) { Text(text.measure) }
    }
}

@Composable
private fun Fact(name: String, value: String) {
    Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
        Text(name, style = MaterialTheme.typography.bodyMedium)
        Text(value, style = MaterialTheme.typography.bodyMedium)
    }
}
