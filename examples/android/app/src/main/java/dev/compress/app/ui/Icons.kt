package dev.compress.app.ui

import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.SolidColor
import androidx.compose.ui.graphics.vector.ImageVector
import androidx.compose.ui.graphics.vector.path
import androidx.compose.ui.unit.dp

/** Small outline icons for the three screens (drawn here, so no icon library is needed). */
internal fun screenIcon(screen: Int): ImageVector = when (screen) {
    0 -> icon("classify") { // a tag
        moveTo(3f, 12f); lineTo(12f, 3f); lineTo(21f, 3f); lineTo(21f, 12f); lineTo(12f, 21f); close()
        moveTo(16f, 6f); lineTo(18f, 6f); lineTo(18f, 8f); lineTo(16f, 8f); close()
    }
    1 -> icon("search") { // a magnifier
        moveTo(10f, 3f); arcTo(7f, 7f, 0f, true, true, 9.99f, 3f); close()
        moveTo(15f, 15f); lineTo(21f, 21f)
    }
    else -> icon("about") { // an i in a circle
        moveTo(12f, 2f); arcTo(10f, 10f, 0f, true, true, 11.99f, 2f); close()
        moveTo(12f, 10f); lineTo(12f, 17f)
        moveTo(12f, 7f); lineTo(12f, 7.5f)
    }
}

private fun icon(name: String, draw: androidx.compose.ui.graphics.vector.PathBuilder.() -> Unit): ImageVector =
    ImageVector.Builder(name = name, defaultWidth = 24.dp, defaultHeight = 24.dp, viewportWidth = 24f, viewportHeight = 24f)
        .path(stroke = SolidColor(Color.Black), strokeLineWidth = 2f, pathBuilder = draw)
        .build()
