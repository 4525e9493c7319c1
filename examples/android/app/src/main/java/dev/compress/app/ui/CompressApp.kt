package dev.compress.app.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.Icon
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableIntStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.compress.app.AppViewModel
import dev.compress.app.BundleState
import dev.compress.app.Encoders
import dev.compress.app.Language
import dev.compress.app.UiText

/** The app: a top bar with the 中文 / English switch and the precision, three screens below. */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun CompressApp(viewModel: AppViewModel) {
    val bundle by viewModel.bundle.collectAsStateWithLifecycle()
    val language by viewModel.language.collectAsStateWithLifecycle()
    val precision by viewModel.precision.collectAsStateWithLifecycle()
    val text = UiText.of(language)
    var screen by rememberSaveable { mutableIntStateOf(0) }
    MaterialTheme {
        Scaffold(
            topBar = {
                TopAppBar(
                    title = { Text("Compress CLIP") },
                    actions = {
                        Row(horizontalArrangement = Arrangement.spacedBy(4.dp), modifier = Modifier.padding(end = 8.dp)) {
                            Language.entries.forEach { option ->
                                FilterChip(selected = option == language, onClick = { viewModel.setLanguage(option) }, label = { Text(option.switchLabel) })
                            }
                            (bundle as? BundleState.Ready)?.bundle?.manifest?.precisions(Encoders.TARGET)?.forEach { option ->
                                FilterChip(selected = option == precision, onClick = { viewModel.setPrecision(option) }, label = { Text(option) })
                            }
                        }
                    },
                )
            },
            bottomBar = {
                NavigationBar {
                    listOf(text.classify, text.search, text.about).forEachIndexed { i, label ->
                        NavigationBarItem(
                            selected = screen == i,
                            onClick = { screen = i },
                            icon = { Icon(screenIcon(i), contentDescription = null) },
                            label = { Text(label) },
                        )
                    }
                }
            },
        ) { padding ->
            Box(Modifier.padding(padding).fillMaxSize()) {
                when (val state = bundle) {
                    BundleState.Loading -> Column(Modifier.fillMaxSize(), verticalArrangement = Arrangement.Center, horizontalAlignment = Alignment.CenterHorizontally) {
                        CircularProgressIndicator()
                        Text(text.loading, modifier = Modifier.padding(16.dp))
                    }
                    is BundleState.Refused -> RefusedScreen(text, state.reason)
                    is BundleState.Ready -> when (screen) {
                        0 -> ClassifyScreen(viewModel, text)
                        1 -> SearchScreen(viewModel, text)
                        else -> AboutScreen(viewModel, state, text)
                    }
                }
            }
        }
    }
}

@Composable
private fun RefusedScreen(text: UiText, reason: String) {
    Column(Modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.Center) {
        Text(text.refused, style = MaterialTheme.typography.headlineSmall, color = MaterialTheme.colorScheme.error)
        Text(reason, modifier = Modifier.padding(top = 12.dp), style = MaterialTheme.typography.bodyMedium)
    }
}
