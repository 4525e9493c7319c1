package dev.compress.app.ui

import android.content.Context
import android.net.Uri
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.FilterChip
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.unit.dp
import androidx.core.content.FileProvider
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.compress.app.AppViewModel
import dev.compress.app.UiText
import java.io.File

/** Classify: a picture from the camera or the photo library, its top-5 against a label set, and the inference time. */
@Composable
fun ClassifyScreen(viewModel: AppViewModel, text: UiText) {
    val state by viewModel.classify.collectAsStateWithLifecycle()
    val language by viewModel.language.collectAsStateWithLifecycle()
    val context = LocalContext.current
    val picker = rememberLauncherForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri -> uri?.let(viewModel::classify) }
    var pendingShot by rememberSaveable { mutableStateOf<Uri?>(null) }
    val camera = rememberLauncherForActivityResult(ActivityResultContracts.TakePicture()) { saved ->
        val shot = pendingShot
        if (saved && shot != null) viewModel.classify(shot)
    }
    val labelSets = remember(language, state.labelSet) { viewModel.labelSets() }

    Column(Modifier.fillMaxWidth().verticalScroll(rememberScrollState()).padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Button(onClick = { picker.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly)) }) { Text(text.pickPhoto) }
            OutlinedButton(onClick = {
                val shot = newCameraUri(context)
                pendingShot = shot
                camera.launch(shot)
            }) { Text(text.takePhoto) }
        }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Text(text.labelSet, modifier = Modifier.padding(top = 8.dp))
            labelSets.forEach { name ->
                FilterChip(selected = name == state.labelSet, onClick = { viewModel.setLabelSet(name) }, label = { Text(name) })
            }
        }
        val picture = state.picture
        if (picture == null) {
            Text(text.noPicture, style = MaterialTheme.typography.bodyLarge)
        } else {
            Thumbnail(picture, side = 512, modifier = Modifier.fillMaxWidth().height(280.dp))
        }
        if (state.busy) LinearProgressIndicator(Modifier.fillMaxWidth())
        state.error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        state.predictions.forEach { prediction ->
            Column {
                Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                    Text(prediction.className, style = MaterialTheme.typography.titleMedium)
                    Text("%.1f%%  (cos %.3f)".format(prediction.probability * 100, prediction.cosine))
                }
                LinearProgressIndicator(progress = { prediction.probability.toFloat() }, modifier = Modifier.fillMaxWidth())
            }
        }
        state.millis?.let { Text("${text.inference}: %.1f ms".format(it), style = MaterialTheme.typography.bodySmall) }
    }
}

/** A file in the app's cache, shared with the camera app through the FileProvider of AndroidManifest.xml. */
private fun newCameraUri(context: Context): Uri {
    val folder = File(context.cacheDir, "camera").apply { mkdirs() }
    val file = File(folder, "shot-${System.currentTimeMillis()}.jpg")
    return FileProvider.getUriForFile(context, "${context.packageName}.pictures", file)
}
