"""Zero-shot accuracy of any encoder (teacher or student) on the demo world's labelled tasks."""

from __future__ import annotations

from collections.abc import Sequence

from compress.demo_world.tasks import ZeroShotTask, get_task, zero_shot_tasks
from compress.demo_world.world import DEFAULT_IMAGE_SIZE
from compress.eval.tasks import task_accuracies


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
    chosen = [get_task(task) if isinstance(task, str) else task for task in tasks or zero_shot_tasks()]
    return task_accuracies(encoder, chosen, count=count, langs=langs, split=split, image_size=image_size, seed=seed)
