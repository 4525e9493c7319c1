"""The rich console every command prints through."""

from __future__ import annotations

from rich.console import Console

LOG_WIDTH = 132


def make_console() -> Console:
    """A rich console; when the output goes to a file or a pipe (a log), wide enough that tables keep
    every column instead of folding them into the 80 columns rich assumes there."""
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, LOG_WIDTH)
    return console
