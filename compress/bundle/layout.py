"""The names inside a bundle folder, defined once: every module that reads or writes a bundle imports them."""

from __future__ import annotations

FORMAT = "compress-bundle"
SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
TOKENIZER_MODEL = "tokenizer.model"
TOKENIZER_JSON = "tokenizer.json"
GOLDEN = "golden.json"
GOLDEN_FORMAT = "compress-golden"
GOLDEN_VERSION = 2
GOLDEN_DIR = "golden"
REPORT = "export_report.json"
LABELS_DIR = "labels"


def label_file(label_set: str, lang: str) -> str:
    return f"{LABELS_DIR}/{label_set}.{lang}.json"
