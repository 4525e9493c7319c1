"""Zero-shot top-1 of any encoder on the zero-shot tasks a data source offers (`compress.data.sources`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from compress.errors import CompressError
from compress.eval.zeroshot import class_embeddings, image_embeddings, top_k_accuracy


def task_accuracies(
    encoder,
    tasks: Sequence,
    count: int = 500,
    langs: Sequence[str] | None = None,
    split: str = "test",
    **sample_options,
) -> dict[tuple[str, str], float]:
    """Top-1 accuracy per (task, lang), class prompts averaged over each task's templates.

    `tasks` are `ZeroShotTask`s (name, classnames, templates, test_samples); `sample_options` go to
    `test_samples` (e.g. image_size, seed). `langs` defaults to the task languages the encoder
    serves; naming one it does not serve is an error. A task's images are embedded once for all languages.
    """
    served = tuple(getattr(encoder, "languages", ("en", "zh")))
    if langs is None:
        langs = [lang for lang in ("en", "zh") if lang in served]
    missing = [lang for lang in langs if lang not in served]
    if missing:
        raise CompressError(f"encoder {getattr(encoder, 'name', type(encoder).__name__)} does not serve {', '.join(missing)}")
    results: dict[tuple[str, str], float] = {}
    for task in tasks:
        images, labels = task.test_samples(count, split=split, **sample_options)
        features = image_embeddings(encoder, images)
        targets = torch.tensor(labels)
        for lang in langs:
            classes = class_embeddings(encoder, task.classnames[lang], task.templates[lang], lang).to(features.device)
            results[(task.name, lang)] = top_k_accuracy(features @ classes.T, targets.to(features.device), k=1)
    return results
