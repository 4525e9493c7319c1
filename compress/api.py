"""The top-level factories, in the spirit of `timm.create_model`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress import registry
from compress.errors import CompressError
from compress.specs import parse_spec

DEFAULT_STUDENT = "bilingual"


def load_teacher(spec: str | dict[str, Any]):
    """A frozen teacher from a spec.

    "demo", "altclip", "altclip:/local/folder", {"name": "open-clip", "location": "ViT-B-16"};
    {"image": spec, "text": spec} composes an image teacher with a text teacher;
    {"ensemble": [spec, ...], "weights": [...]} averages normalised embeddings.
    """
    if isinstance(spec, dict) and ("image" in spec or "text" in spec) and "name" not in spec:
        from compress.compose import ImageTextTeacher

        return ImageTextTeacher(
            image=load_teacher(spec["image"]) if spec.get("image") else None,
            text=load_teacher(spec["text"]) if spec.get("text") else None,
        )
    if isinstance(spec, dict) and "ensemble" in spec:
        from compress.compose import EnsembleTeacher

        return EnsembleTeacher([load_teacher(s) for s in spec["ensemble"]], weights=spec.get("weights"))
    name, options = parse_spec(spec)
    return registry.get("teachers", name)(**options)


def build_student(spec: str | dict[str, Any] | Path | None = None):
    """A student from a family name, a config dict, or a saved student folder.

    No argument gives the default student. A dict needs a "family" key (default "bilingual");
    its other keys are the family's config. A folder holding `student.json` is loaded with weights.
    """
    if spec is None:
        spec = DEFAULT_STUDENT
    if isinstance(spec, (str, Path)) and Path(spec).is_dir():
        from students.bilingual import BilingualStudent

        return BilingualStudent.from_pretrained(spec)
    if isinstance(spec, (str, Path)) and ("/" in str(spec) or str(spec).startswith(".")):
        raise CompressError(f"{spec}: no such student folder")
    if isinstance(spec, str):
        return registry.get("students", spec)({})
    if isinstance(spec, dict):
        config = dict(spec)
        family = config.pop("family", DEFAULT_STUDENT)
        return registry.get("students", family)(config)
    raise CompressError(f"a student spec is a name, a config dict or a folder, not {type(spec).__name__}")


def open_data(spec: str | dict[str, Any] | Path, **options):
    """A bilingual dataset of `Sample`s: "demo", "demo:train", a JSONL manifest, tar shards, or a dict."""
    from compress.data import open_dataset

    return open_dataset(spec, **options)
