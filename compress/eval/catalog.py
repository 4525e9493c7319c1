"""Class names, prompt templates and primary metrics shipped for ELEVATER's 20 datasets and ImageNet-1K.

Each dataset lives in `compress/eval/data/<name>/` as `classnames.<lang>.txt` and
`templates.<lang>.txt` (one entry a line; line i is class i); `data/datasets.json` records its
class count, ELEVATER primary metric and the other names its folders go by. A user's own files
(`--classnames`, `--templates`, a dataset folder's `label.txt` / `label_cn.txt`) take precedence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from compress.errors import CompressError

LANGS = ("en", "zh")

# For datasets the catalog does not know: CLIP's generic prompts and their Chinese counterparts.
DEFAULT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "a photo of a {}.",
        "a bad photo of a {}.",
        "a good photo of a {}.",
        "a photo of the large {}.",
        "a photo of the small {}.",
        "a close-up photo of a {}.",
        "a bright photo of a {}.",
        "a cropped photo of a {}.",
    ),
    "zh": (
        "一张{}的照片。",
        "一张拍得不好的{}的照片。",
        "一张拍得很好的{}的照片。",
        "一张大{}的照片。",
        "一张小{}的照片。",
        "一张{}的特写照片。",
        "一张明亮的{}的照片。",
        "一张裁剪过的{}的照片。",
    ),
}


def read_lines(path: str | Path, what: str = "list") -> list[str]:
    """Non-empty lines of a UTF-8 text file (a byte-order mark is dropped), each stripped.

    Blank lines at the end are ignored; a blank line between entries is an error, because it
    would shift every later class id by one.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CompressError(f"{path}: no such {what} file") from None
    except UnicodeDecodeError as exc:
        raise CompressError(f"{path}: {what} file is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line:
            raise CompressError(f"{path}: line {number} is blank; a {what} file has one entry a line")
    if not lines:
        raise CompressError(f"{path}: {what} file is empty")
    return lines


def check_templates(templates: list[str], source: str) -> list[str]:
    for template in templates:
        if template.count("{}") != 1:
            raise CompressError(f"{source}: template {template!r} needs exactly one '{{}}' for the class name")
    return templates


def normalise_name(name: str) -> str:
    """Lower case, '-' for '_' and spaces, and any trailing date stamp (`cifar_10_20211007`) dropped."""
    name = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"-\d{8}$", "", name)


@dataclass(frozen=True)
class BuiltinDataset:
    """One dataset's shipped class names and templates, in English and Chinese."""

    name: str
    num_classes: int
    primary_metric: str
    aliases: tuple[str, ...]

    def _read(self, kind: str, lang: str) -> list[str]:
        if lang not in LANGS:
            raise CompressError(f"{self.name}: no shipped {kind} for language {lang!r}; shipped: {', '.join(LANGS)}")
        with resources.as_file(_data_root() / self.name / f"{kind}.{lang}.txt") as path:
            return read_lines(path, kind)

    def classnames(self, lang: str) -> list[str]:
        return self._read("classnames", lang)

    def templates(self, lang: str) -> list[str]:
        return check_templates(self._read("templates", lang), f"{self.name} templates.{lang}.txt")


def _data_root():
    return resources.files("compress.eval") / "data"


@cache
def _index() -> dict[str, BuiltinDataset]:
    raw = json.loads((_data_root() / "datasets.json").read_text(encoding="utf-8"))
    return {
        name: BuiltinDataset(name, entry["num_classes"], entry["primary_metric"], tuple(entry.get("aliases", ())))
        for name, entry in raw.items()
    }


def builtin_names() -> list[str]:
    return sorted(_index())


def find_builtin(name: str) -> BuiltinDataset | None:
    """The shipped dataset a folder or user name refers to, by its name or an alias; None if unknown."""
    wanted = normalise_name(name)
    for dataset in _index().values():
        if wanted == dataset.name or wanted in dataset.aliases:
            return dataset
    return None


def get_builtin(name: str) -> BuiltinDataset:
    found = find_builtin(name)
    if found is None:
        raise CompressError(f"no shipped class names for dataset {name!r}; known: {', '.join(builtin_names())}")
    return found
