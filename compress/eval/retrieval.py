"""Image-text retrieval sets from a JSONL manifest of (image, caption, lang) pairs.

The manifest is the one training reads (`compress.data.manifest`): one JSON object a line with
"image" (relative to the manifest's folder unless absolute), "caption" and "lang". An image may
appear on several lines (several captions, in one or more languages); for each language the set
holds the images that have a caption in it and those captions. Lines the manifest reader rejects
(missing file, empty caption, unknown language) are counted, not fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.errors import CompressError


@dataclass
class RetrievalSet:
    """Unique images and, per language, captions with the index of the image each describes."""

    name: str
    images: list[Any]  # paths, or PIL images for in-memory sets
    captions: dict[str, list[str]]
    image_of_caption: dict[str, list[int]]
    source: str
    rejected_lines: Counter = field(default_factory=Counter)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.captions)

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_memory(
        cls,
        name: str,
        images: Sequence[Any],
        captions: Mapping[str, Sequence[str]],
        image_of_caption: Mapping[str, Sequence[int]] | None = None,
    ) -> RetrievalSet:
        """Images (PIL or paths) and captions per language; without `image_of_caption`, caption i is image i's."""
        owners = {}
        for lang, texts in captions.items():
            owner = list(image_of_caption[lang]) if image_of_caption else list(range(len(texts)))
            if len(owner) != len(texts) or any(not 0 <= i < len(images) for i in owner):
                raise CompressError(f"{name}: {lang} captions do not map onto the {len(images)} images")
            owners[lang] = owner
        return cls(name, list(images), {lang: list(t) for lang, t in captions.items()}, owners, f"{name} (in memory)")


def source_retrieval_set(source: str, split: str = "test", count: int = 500, langs: Sequence[str] = ("en", "zh")) -> RetrievalSet:
    """Image-caption pairs of a registered data source; the same images captioned in each language."""
    from compress.data.sources import get_source, retrieval_pairs

    captions = {}
    images: list = []
    for lang in langs:
        images, captions[lang] = retrieval_pairs(source, count, lang, split=split)
    dataset = RetrievalSet.from_memory(f"{source}-retrieval", images, captions)
    dataset.source = f"{getattr(get_source(source), 'title', source)} {split} split"
    return dataset


def demo_retrieval_set(split: str = "test", count: int = 500, langs: Sequence[str] = ("en", "zh")) -> RetrievalSet:
    """`source_retrieval_set("demo", ...)`: image-caption pairs of the demo data source."""
    return source_retrieval_set("demo", split=split, count=count, langs=langs)


def open_retrieval(manifest: str | Path, name: str | None = None) -> RetrievalSet:
    from compress.data.manifest import open_manifest

    path = Path(manifest).expanduser()
    if not path.is_file():
        raise CompressError(f"{path}: no such retrieval manifest")
    index = open_manifest(path, on_bad="skip")
    images: list[Path] = []
    image_index: dict[str, int] = {}
    captions: dict[str, list[str]] = {}
    owners: dict[str, list[int]] = {}
    for entry in index.entries:
        if entry.path not in image_index:
            image_index[entry.path] = len(images)
            images.append(Path(entry.path))
        captions.setdefault(entry.lang, []).append(entry.caption)
        owners.setdefault(entry.lang, []).append(image_index[entry.path])
    if not images:
        raise CompressError(f"{path}: manifest has no usable pairs ({_describe(index.skipped_at_open)})")
    return RetrievalSet(name or path.stem, images, captions, owners, str(path), Counter(index.skipped_at_open))


def _describe(counts: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common()) or "no lines"
