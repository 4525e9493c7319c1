"""Report names of evaluated models; `compress.api.load_model` turns their specs into encoders.

"demo", "altclip:/models/altclip", "{image: altclip, text: mclip}"   a teacher spec
runs/dc_clip/student, local-dir:runs/dc_clip/student                 a saved student folder
runs/dc_clip/bundle                                                  an exported bundle
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compress.specs import LOCAL_DIR


def model_label(spec: str | Path | dict[str, Any]) -> str:
    """A short name for reports: a folder's name, or the spec itself."""
    if isinstance(spec, dict):
        return json.dumps(spec, sort_keys=True, ensure_ascii=False)
    text = str(spec).strip()
    if text.startswith(("{", "[")):  # an inline mapping names itself
        return text
    text = text[len(LOCAL_DIR) :] if text.startswith(LOCAL_DIR) else text
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve().name
    name, sep, location = text.partition(":")
    if sep and ("/" in location or location.startswith(".")):  # "altclip:/models/altclip-m9" -> "altclip:altclip-m9"
        return f"{name}:{Path(location).name or location}"
    return text


def unique_labels(labels: list[str]) -> list[str]:
    """Labels made unique by suffixing repeats with #2, #3, ..."""
    used: set[str] = set()
    out = []
    for label in labels:
        candidate, count = label, 1
        while candidate in used:
            count += 1
            candidate = f"{label}#{count}"
        used.add(candidate)
        out.append(candidate)
    return out
