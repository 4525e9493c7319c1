"""The chosen student architecture as a YAML file that `compress.build_student` and the recipes read.

config = read_student_config("runs/search/chosen_student.yaml")
student = compress.build_student(config)
# or: python -m compress recipe dc_clip --set student=runs/search/chosen_student.yaml
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from compress.errors import CompressError
from compress.files import write_text_atomically
from compress.search.space import ARCHITECTURE_KEYS, Candidate

FAMILY = "bilingual"


def _tower_options(candidate: Candidate) -> dict[str, Any]:
    """Every architecture option (so a change of defaults cannot change the file's meaning) plus the others given."""
    resolved = candidate.resolved
    options = {key: resolved[key] for key in ARCHITECTURE_KEYS[candidate.family]}
    options.update(candidate.options)
    return options


def chosen_student_config(image: Candidate, text: Candidate) -> dict[str, Any]:
    """A `students.bilingual` config with both towers.

    The text vocabulary becomes `tokenizer_vocab_size` (the size the student's tokenizer is trained
    to), not `text.vocab_size`, which must equal the actual tokenizer's size and is filled in from it.
    """
    if image.embed_dim != text.embed_dim:
        raise CompressError(f"image embed_dim {image.embed_dim} and text embed_dim {text.embed_dim} differ")
    text_options = _tower_options(text)
    vocab_size = text_options.pop("vocab_size")
    return {
        "family": FAMILY,
        "embed_dim": image.embed_dim,
        "image": _tower_options(image),
        "text": text_options,
        "tokenizer_vocab_size": vocab_size,
    }


def write_student_config(path: str | Path, config: dict[str, Any], header: str = "") -> Path:
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return write_text_atomically(path, comment + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def read_student_config(path: str | Path) -> dict[str, Any]:
    """A student config from a YAML or JSON file (a mapping of `students.bilingual` options, with `family`)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CompressError(f"{path}: no such student config file")
    try:
        text = path.read_text(encoding="utf-8")
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CompressError(f"{path}: not a valid student config ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise CompressError(f"{path}: a student config is a mapping of options")
    return config
