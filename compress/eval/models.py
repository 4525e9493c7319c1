"""Turning a model spec into an encoder with `encode_images` and `encode_texts(texts, lang)`.

    "demo", "altclip:/models/altclip", '{"image": "altclip", "text": "mclip"}'   a teacher spec
    runs/dc_clip/student                                       a saved student folder (student.json)
    runs/dc_clip/bundle                                        an exported bundle (manifest.json),
                                                               run through the ExecuTorch runtime
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compress.errors import CompressError

BUNDLE_MANIFEST = "manifest.json"
STUDENT_CONFIG = "student.json"


def resolve_model(spec: str | Path | dict[str, Any]):
    """The encoder a spec names: a bundle folder, a student folder, or a teacher spec."""
    if isinstance(spec, dict):
        from compress.api import load_teacher

        return load_teacher(spec)
    text = str(spec).strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CompressError(f"model spec {text!r} is not valid JSON ({exc.msg})") from None
        return resolve_model(parsed)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / BUNDLE_MANIFEST).is_file():
            return load_bundle_encoder(path)
        if (path / STUDENT_CONFIG).is_file():
            from compress.api import build_student

            student = build_student(path)
            student.eval()
            return student
        raise CompressError(
            f"{path}: neither a bundle ({BUNDLE_MANIFEST}) nor a saved student ({STUDENT_CONFIG})"
        )
    if path.exists():
        raise CompressError(f"{path}: a model is a folder or a teacher spec, not a file")
    if ":" not in text and ("/" in text or text.startswith(".")):
        raise CompressError(f"{path}: no such model folder")
    from compress.api import load_teacher

    return load_teacher(text)


def load_bundle_encoder(folder: Path):
    """compress.bundle.BundleEncoder over a bundle folder (imported only when a bundle is evaluated)."""
    try:
        from compress.bundle import BundleEncoder
    except ImportError as exc:
        if exc.name not in ("compress.bundle",):
            raise
        raise CompressError(f"{folder}: bundle support not installed (compress.bundle is missing)") from None
    return BundleEncoder(folder)


def model_label(spec: str | Path | dict[str, Any]) -> str:
    """A short name for reports: a folder's name, or the spec itself."""
    if isinstance(spec, dict):
        return json.dumps(spec, sort_keys=True, ensure_ascii=False)
    text = str(spec).strip()
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
