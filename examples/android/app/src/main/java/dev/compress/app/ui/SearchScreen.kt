package dev.compress.app.ui

import android.Manifest
import android.content.pm.PackageManager
import android.os.Build
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.grid.GridCells
import androidx.compose.foundation.lazy.grid.LazyVerticalGrid
import androidx.compose.foundation.lazy.grid.items
import androidx.compose.foundation.text.KeyboardActions
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.AssistChip
import androidx.compose.material3.Button
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.remember
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.text.input.ImeAction
import androidx.compose.ui.unit.dp
import androidx.core.content.ContextCompat
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.compress.app.AppViewModel
import dev.compress.app.PhotoLibrary
import dev.compress.app.UiText

private val photoPermission = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) Manifest.permission.READ_MEDIA_IMAGES else Manifest.permission.READ_EXTERNAL_STORAGE

/** Search: index the photo library in the background, then find photos by a Chinese or English description. */
@Composable
fun SearchScreen(viewModel: AppViewModel, text: UiText) {
    val state by viewModel.search.collectAsStateWithLifecycle()
    val language by viewModel.language.collectAsStateWithLifecycle()
    val context = LocalContext.current
    val permission = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) viewModel.indexLibrary()
    }
    val suggestions = remember(language) { viewModel.suggestions() }

    Column(Modifier.fillMaxSize().padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            Button(enabled = !state.indexing, onClick = {
                if (ContextCompat.checkSelfPermission(context, photoPermission) == PackageManager.PERMISSION_GRANTED) viewModel.indexLibrary()
                else permission.launch(photoPermission)
            }) { Text(text.indexLibrary) }
            Text("${state.indexed} ${text.indexed}", modifier = Modifier.padding(top = 12.dp))
        }
        if (state.indexing) {
            Text("${text.indexing} ${state.indexed} / ${state.total}")
            LinearProgressIndicator(
                progress = { if (state.total == 0) 0f else state.indexed.toFloat() / state.total },
                modifier = Modifier.fillMaxWidth(),
            )
        }
        state.rebuiltBecause?.let { Text("${text.rebuilt}: $it", style = MaterialTheme.typography.bodySmall) }
        OutlinedTextField(
            value = state.query,
            onValueChange = viewModel::setQuery,
            label = { Text(text.query) },
            singleLine = true,
            keyboardOptions = KeyboardOptions(imeAction = ImeAction.Search),
            keyboardActions = KeyboardActions(onSearch = { viewModel.runQuery() }),
            modifier = Modifier.fillMaxWidth(),
        )
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            suggestions.take(3).forEach { prompt ->
                AssistChip(onClick = { viewModel.setQuery(prompt); viewModel.runQuery() }, label = { Text(prompt, maxLines = 1) })
            }
        }
        state.error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        state.millis?.let { Text("%.1f ms".format(it), style = MaterialTheme.typography.bodySmall) }
        LazyVerticalGrid(columns = GridCells.Adaptive(104.dp), horizontalArrangement = Arrangement.spacedBy(4.dp), verticalArrangement = Arrangement.spacedBy(4.dp)) {
            items(state.hits, key = { it.key }) { hit ->
                Column {
                    Thumbnail(PhotoLibrary.uriOf(hit.key), side = 256, modifier = Modifier.fillMaxWidth().aspectRatio(1f))
                    Text("%.3f".format(hit.cosine), style = MaterialTheme.typography.labelSmall)
                }
            }
        }
    }
}
