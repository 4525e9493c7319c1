"""The top-level factories, in the spirit of `timm.create_model`; every spec follows `compress.specs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compress import registry
from compress.bundle.layout import MANIFEST as BUNDLE_MANIFEST
from compress.errors import CompressError
from compress.specs import ENSEMBLE, IMAGE_TEXT, LOCAL_DIR, local_dir, looks_like_path, teacher_spec

DEFAULT_STUDENT = "bilingual"
STUDENT_CONFIG = "student.json"  # a saved student folder's record of its family and config


def load_teacher(spec: str | dict[str, Any]):
    """A frozen teacher from a spec.

    "demo", "altclip", "altclip:/local/folder", {"name": "open-clip", "location": "ViT-B-16"};
    {"image": spec, "text": spec} composes an image teacher with a text teacher;
    {"ensemble": [spec, ...], "weights": [...]} averages normalised embeddings.
    """
    parsed = teacher_spec(spec)
    if parsed.kind == IMAGE_TEXT:
        from compress.compose import ImageTextTeacher

        image, text = parsed.parts["image"], parsed.parts["text"]
        return ImageTextTeacher(image=load_teacher(image) if image else None, text=load_teacher(text) if text else None)
    if parsed.kind == ENSEMBLE:
        from compress.compose import EnsembleTeacher

        return EnsembleTeacher([load_teacher(member) for member in parsed.members], weights=parsed.weights)
    return registry.get("teachers", parsed.name)(**parsed.options)


def student_family(name: str):
    """(build, load) of a registered student family.

    The `compress.students` entry point names a class (or object) with `from_config(config)` and
    `from_pretrained(folder)`, or a plain factory `build(config) -> Student` (which can build but
    not reload a saved folder).
    """
    entry = registry.get("students", name)
    build = getattr(entry, "from_config", None) or entry
    return build, getattr(entry, "from_pretrained", None)


def build_student(spec: str | dict[str, Any] | Path | None = None):
    """A student from a family name, a config dict, or a saved student folder.

    No argument gives the default student. A dict needs a "family" key (default "bilingual");
    its other keys are the family's config. A folder ("local-dir:<folder>", or an existing folder)
    holding `student.json` is loaded with its weights by the family that `student.json` records.
    """
    if spec is None:
        spec = DEFAULT_STUDENT
    folder = local_dir(spec)
    if folder is not None:
        return load_student(folder)
    if isinstance(spec, Path) or (isinstance(spec, str) and looks_like_path(spec)):
        raise CompressError(f"{spec}: no such student folder")
    if isinstance(spec, str):
        build, _ = student_family(spec.strip())
        return build({})
    if isinstance(spec, dict):
        config = dict(spec)
        family = config.pop("family", DEFAULT_STUDENT)
        build, _ = student_family(family)
        return build(config)
    raise CompressError(f"a student spec is a name, a config dict or a folder, not {type(spec).__name__}")


def saved_family(folder: str | Path) -> str:
    """The student family a saved folder's `student.json` records."""
    path = Path(folder) / STUDENT_CONFIG
    if not path.is_file():
        raise CompressError(f"{Path(folder)}: not a saved student (no {STUDENT_CONFIG})")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompressError(f"{path}: not valid JSON ({exc})") from None
    family = state.get("family") if isinstance(state, dict) else None
    if not isinstance(family, str) or not family:
        raise CompressError(f"{path}: records no student 'family' (the registered family that rebuilds it)")
    return family


def load_student(folder: str | Path):
    """A saved student, rebuilt by the registered family its `student.json` names."""
    folder = Path(folder)
    family = saved_family(folder)
    _, load = student_family(family)
    if load is None:
        raise CompressError(
            f"{folder}: student family {family!r} cannot load a saved folder (its entry point has no from_pretrained)"
        )
    return load(folder)


def load_model(spec: str | Path | dict[str, Any]):
    """The encoder an evaluation spec names: a bundle folder, a saved student folder, or a teacher spec.

    A bundle (`manifest.json`) runs through the ExecuTorch runtime; a student is put in eval mode.
    """
    folder = local_dir(spec)
    if folder is not None:
        if (folder / BUNDLE_MANIFEST).is_file():
            return _bundle_encoder(folder)
        if (folder / STUDENT_CONFIG).is_file():
            student = build_student(folder)
            student.eval()
            return student
        raise CompressError(f"{folder}: neither a bundle ({BUNDLE_MANIFEST}) nor a saved student ({STUDENT_CONFIG})")
    if isinstance(spec, (str, Path)):
        text = str(spec).strip()
        path = Path(text).expanduser()
        if path.exists():
            raise CompressError(f"{path}: a model is a folder or a teacher spec, not a file")
        if looks_like_path(text):
            raise CompressError(f"{path}: no such model folder")
        spec = text
    return load_teacher(spec)


def _bundle_encoder(folder: Path):
    """compress.bundle.BundleEncoder over a bundle folder (imported only when a bundle is evaluated)."""
    try:
        from compress.bundle import BundleEncoder
    except ImportError as exc:
        if exc.name not in ("compress.bundle",):
            raise
        raise CompressError(f"{folder}: bundle support not installed (compress.bundle is missing)") from None
    return BundleEncoder(folder)


def open_data(spec: str | dict[str, Any] | Path, **options):
    """A bilingual dataset of `Sample`s: "demo", "demo:train", a JSONL manifest, tar shards, or a dict."""
    from compress.data import open_dataset

    return open_dataset(spec, **options)


__all__ = ["LOCAL_DIR", "build_student", "load_model", "load_student", "load_teacher", "open_data", "student_family"]
