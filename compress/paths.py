"""Where compress keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """$COMPRESS_CACHE_DIR, else the user cache directory (e.g. ~/.cache/compress)."""
    return Path(os.environ.get("COMPRESS_CACHE_DIR") or platformdirs.user_cache_dir("compress"))
