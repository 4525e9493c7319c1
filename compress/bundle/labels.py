"""Label sets a bundle can carry: the demo world's tasks and ELEVATER datasets with shipped class names.

A label set file `labels/<set>.<lang>.json` holds the class names, the prompt templates and one
L2-normalised embedding per class (the normalised mean of its prompts' text embeddings), so an app
classifies a picture with the image model alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from PIL import Image

from compress.errors import CompressError

TestSamples = Callable[[int], tuple[list[Image.Image], list[int]]]


@dataclass(frozen=True)
class LabelSet:
    """Class names and templates per language.

    `test_samples(count)`, when the set has labelled test pictures, gives `count` of them as
    (images, class indices); the bundle export measures zero-shot top-1 on them.
    """

    name: str
    classnames: dict[str, list[str]]
    templates: dict[str, list[str]]
    source: str
    test_samples: TestSamples | None = field(default=None, compare=False, repr=False)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in ("en", "zh") if lang in self.classnames)


def available_label_sets() -> list[str]:
    """Every name `resolve_label_set` accepts: "<source>-<task>" for each data source's zero-shot task, then ELEVATER."""
    from compress.data.sources import sources_with_tasks
    from compress.eval.catalog import builtin_names

    tasks = [f"{name}-{task.name}" for name, source in sources_with_tasks().items() for task in source.zero_shot_tasks()]
    return tasks + builtin_names()


def resolve_label_set(name: str) -> LabelSet:
    """A data source's zero-shot task ("demo-shape", "demo-color", "demo-color_shape") or an ELEVATER dataset ("cifar-10").

    A source's task brings its labelled test images (`test_samples`); ELEVATER names bring class names only.
    """
    from compress.data.sources import sources_with_tasks

    name = name.strip()
    for source_name, source in sources_with_tasks().items():
        if not name.startswith(f"{source_name}-"):
            continue
        task = {t.name: t for t in source.zero_shot_tasks()}.get(name[len(source_name) + 1 :])
        if task is not None:
            return LabelSet(
                name,
                dict(task.classnames),
                dict(task.templates),
                source=getattr(source, "title", source_name),
                test_samples=partial(task.test_samples, split="test"),
            )
    from compress.eval.catalog import find_builtin

    dataset = find_builtin(name)
    if dataset is not None:
        return LabelSet(
            dataset.name,
            {lang: dataset.classnames(lang) for lang in ("en", "zh")},
            {lang: dataset.templates(lang) for lang in ("en", "zh")},
            source="ELEVATER class names shipped with compress",
        )
    raise CompressError(f"unknown label set {name!r}; available: {', '.join(available_label_sets())}")


@torch.no_grad()
def label_embeddings(encoder, label_set: LabelSet, lang: str) -> torch.Tensor:
    """`[C, D]` class embeddings of one language: each class is the L2-normalised mean of its
    prompt-template embeddings (`encoder.encode_texts`), as zero-shot evaluation computes them."""
    rows = []
    for name in label_set.classnames[lang]:
        mean = encoder.encode_texts([t.format(name) for t in label_set.templates[lang]], lang).float().mean(dim=0)
        rows.append(mean / mean.norm())
    return torch.stack(rows).cpu()


def label_file_content(label_set: LabelSet, lang: str, embeddings: torch.Tensor, computed_with: str) -> dict:
    """The JSON object of `labels/<set>.<lang>.json`."""
    return {
        "set": label_set.name,
        "lang": lang,
        "source": label_set.source,
        "classnames": list(label_set.classnames[lang]),
        "templates": list(label_set.templates[lang]),
        "embed_dim": int(embeddings.shape[1]),
        "normalized": True,
        "computed_with": computed_with,
        "embeddings": [[float(v) for v in row] for row in embeddings.tolist()],
    }
