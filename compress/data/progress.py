"""A rich progress bar for indexing large sources, off for small ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from rich.progress import track as rich_track

T = TypeVar("T")


def track(items: Sequence[T], description: str, show: bool) -> Iterable[T]:
    """`items`, with a transient progress bar while they are consumed when `show` is true."""
    if not show:
        return items
    return rich_track(items, description=description, total=len(items), transient=True)
