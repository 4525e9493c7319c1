"""Label sets a bundle can carry: the demo world's tasks and ELEVATER datasets with shipped class names.

A label set file `labels/<set>.<lang>.json` holds the class names, the prompt templates and one
L2-normalised embedding per class (the normalised mean of its prompts' text embeddings), so an app
classifies a picture with the image model alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from compress.errors import CompressError

DEMO_PREFIX = "demo-"


@dataclass(frozen=True)
class LabelSet:
    """Class names and templates per language; `task` is the demo task when the set has test images."""

    name: str
    classnames: dict[str, list[str]]
    templates: dict[str, list[str]]
    source: str
    task: Any = field(default=None, compare=False, repr=False)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in ("en", "zh") if lang in self.classnames)


def available_label_sets() -> list[str]:
    """Every name `resolve_label_set` accepts."""
    from compress.demo_world import DEMO_TASKS
    from compress.eval.catalog import builtin_names

    return [f"{DEMO_PREFIX}{name}" for name in DEMO_TASKS] + builtin_names()


def resolve_label_set(name: str) -> LabelSet:
    """A demo task ("demo-shape", "demo-color", "demo-color_shape") or an ELEVATER dataset ("cifar-10")."""
    name = name.strip()
    if name.startswith(DEMO_PREFIX):
        from compress.demo_world import DEMO_TASKS

        task = DEMO_TASKS.get(name[len(DEMO_PREFIX):])
        if task is not None:
            return LabelSet(name, dict(task.classnames), dict(task.templates), source="demo world", task=task)
    else:
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
    """`[C, D]` class embeddings of one language, computed with `encoder.encode_texts`."""
    from compress.eval.zeroshot import class_embeddings

    return class_embeddings(encoder, label_set.classnames[lang], label_set.templates[lang], lang).float().cpu()


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
