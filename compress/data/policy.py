"""The bad-input policy: every unusable sample is either skipped and counted, or raised.

`on_bad="skip"` (the default) counts each rejected sample under a reason code and keeps the first
entries in a bounded log; `on_bad="raise"` raises `BadSampleError` naming the file and the reason.
Nothing is dropped without being counted.

Skips found while decoding images may happen inside DataLoader worker processes, whose counters the
training process never sees. Each such skip is therefore also written to a per-process journal that
`compress.data.loader.collate_samples` empties into the batch it builds, so the counts travel back
to the training process with the batches.
"""

from __future__ import annotations

import os
from collections import Counter

from compress.errors import BadSampleError, CompressError

ON_BAD_CHOICES = ("skip", "raise")
LANGUAGES = ("en", "zh")
SKIP_LOG_LIMIT = 1000

# Every reason a sample can be rejected for, with what it means.
REASONS: dict[str, str] = {
    "missing_file": "the image file (or the shard member holding the image) does not exist",
    "empty_file": "the image file is zero bytes",
    "corrupt_image": "the image header or data is damaged",
    "truncated_image": "the image file ends before its data does",
    "unsupported_format": "not an image format that can be decoded (or a mode that cannot become RGB)",
    "image_too_large": "more pixels than Pillow's decompression-bomb limit",
    "empty_caption": "the caption is empty or only whitespace",
    "unknown_language": "the language is missing or not one of en, zh",
    "missing_caption": "a shard sample has an image but no .json caption or .txt file",
    "bad_metadata": "a shard sample's .json/.txt/.lang member cannot be read (bad JSON or UTF-8)",
    "bad_manifest_line": "a manifest line is not a JSON object with image, caption and lang",
    "corrupt_shard": "a .tar shard cannot be read as a tar archive",
    "outside_folder": "a relative manifest path leaves the manifest's folder (through .. or a symlink pointing out)",
    "bad_member_name": "a shard member's name is absolute, climbs out with .., is not UTF-8, or occurs twice",
}


def check_on_bad(on_bad: str) -> str:
    if on_bad not in ON_BAD_CHOICES:
        raise CompressError(f"on_bad must be one of {', '.join(ON_BAD_CHOICES)}, not {on_bad!r}")
    return on_bad


def normalise_language(lang: object) -> str | None:
    """ "en" or "zh" (case and surrounding spaces ignored), or None for anything else."""
    if not isinstance(lang, str):
        return None
    lang = lang.strip().lower()
    return lang if lang in LANGUAGES else None


class SkipRecorder:
    """Applies the policy: `reject` raises under "raise", counts and logs under "skip"."""

    def __init__(self, on_bad: str = "skip", log_limit: int = SKIP_LOG_LIMIT):
        self.on_bad = check_on_bad(on_bad)
        self.log_limit = log_limit
        self.skipped: Counter = Counter()
        self.log: list[tuple[str, str]] = []

    def reject(self, key: str, where: str, reason: str, detail: str = "") -> None:
        """Raise `BadSampleError(where, reason, detail)` or count the skip of `key`."""
        if reason not in REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        if self.on_bad == "raise":
            raise BadSampleError(where, reason, detail)
        self.skipped[reason] += 1
        if len(self.log) < self.log_limit:
            self.log.append((key, reason))


# The per-process journal of skips found while decoding (see the module docstring).
_journal: list[tuple[str, str, str]] = []
_journal_pid = os.getpid()


def journal_skip(source: str, key: str, reason: str) -> None:
    """Note that sample `key` of `source` was skipped at access time in this process."""
    _own_journal().append((source, key, reason))


def drain_journal() -> list[tuple[str, str, str]]:
    """The (source, key, reason) skips noted in this process since the last drain."""
    journal = _own_journal()
    entries = list(journal)
    journal.clear()
    return entries


def _own_journal() -> list[tuple[str, str, str]]:
    # A forked worker inherits its parent's undrained entries; they are the parent's to report.
    global _journal_pid
    if _journal_pid != os.getpid():
        _journal.clear()
        _journal_pid = os.getpid()
    return _journal
