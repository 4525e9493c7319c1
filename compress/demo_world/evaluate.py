"""Zero-shot accuracy of any encoder (teacher or student) on the demo world's labelled tasks."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from compress.demo_world.tasks import ZeroShotTask, get_task, zero_shot_tasks
from compress.demo_world.world import DEFAULT_IMAGE_SIZE, DemoWorld
from compress.errors import CompressError
from compress.eval.zeroshot import class_embeddings, image_embeddings, top_k_accuracy


def evaluate_demo_tasks(
    encoder,
    langs: Sequence[str] | None = None,
    count: int = 500,
    tasks: Sequence[str | ZeroShotTask] | None = None,
    split: str = "test",
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
) -> dict[tuple[str, str], float]:
    """Top-1 accuracy per (task, lang), class prompts averaged over each task's templates.

    `langs` defaults to the demo languages the encoder serves; naming one it does not serve is an
    error. Images of a task are rendered and embedded once and shared by every language.
    """
    served = tuple(getattr(encoder, "languages", ("en", "zh")))
    if langs is None:
        langs = [lang for lang in ("en", "zh") if lang in served]
    missing = [lang for lang in langs if lang not in served]
    if missing:
        raise CompressError(f"encoder {getattr(encoder, 'name', type(encoder).__name__)} does not serve {', '.join(missing)}")
    world = DemoWorld(image_size=image_size, seed=seed)
    results: dict[tuple[str, str], float] = {}
    for task in tasks or zero_shot_tasks():
        task = get_task(task) if isinstance(task, str) else task
        images, labels = world.task_samples(task, split=split, count=count)
        features = image_embeddings(encoder, images)
        targets = torch.tensor(labels)
        for lang in langs:
            classes = class_embeddings(encoder, task.classnames[lang], task.templates[lang], lang).to(features.device)
            results[(task.name, lang)] = top_k_accuracy(features @ classes.T, targets.to(features.device), k=1)
    return results
