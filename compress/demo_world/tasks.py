"""Zero-shot classification tasks of the demo world, with class names and prompts in both languages."""

from __future__ import annotations

from dataclasses import dataclass, field

from compress.demo_world.vocabulary import COLORS, SHAPES
from compress.errors import CompressError


@dataclass(frozen=True)
class ZeroShotTask:
    """A labelled task: class `i` is `classnames[lang][i]`; prompts are `templates[lang]` (with one `{}`).

    `attributes[i]` pins the scene attributes that make an object belong to class `i`.
    """

    name: str
    classnames: dict[str, list[str]]
    templates: dict[str, list[str]]
    attributes: list[dict[str, str]] = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.attributes)

    def label_of(self, attributes: dict[str, str]) -> int:
        """The class of an object with these attributes (shape, color, ...)."""
        for label, pinned in enumerate(self.attributes):
            if all(attributes.get(k) == v for k, v in pinned.items()):
                return label
        raise CompressError(f"demo task {self.name!r} has no class for {attributes!r}")

    def test_samples(self, count: int, split: str = "test", image_size: int | None = None, seed: int = 0):
        """(images, labels): `count` balanced single-object images of this task from `split`."""
        from compress.demo_world.world import DEFAULT_IMAGE_SIZE, DemoWorld

        world = DemoWorld(image_size=DEFAULT_IMAGE_SIZE if image_size is None else image_size, seed=seed)
        return world.task_samples(self, split=split, count=count)


# Prompts in the words the world's own captions use.
SHAPE_TEMPLATES = {
    "en": ["a photo of a {}.", "an image showing a {}.", "a picture of a {}.", "a {}.", "one {}."],
    "zh": ["一张{}的照片。", "图片里有一个{}。", "一个{}。", "一张照片，里面是一个{}。", "有一个{}。"],
}
COLOR_TEMPLATES = {
    "en": ["something {}.", "the color {}.", "an object that is {}.", "a shape colored {}.", "one {} shape."],
    "zh": ["有一个{}的东西。", "一个{}的图形。", "一个{}的东西。", "一个{}的形状。", "颜色是{}。"],
}
COLOR_SHAPE_TEMPLATES = {
    "en": ["one {}.", "a photo of the {}.", "a photo of one {}.", "the {}."],
    "zh": ["图片画着一个{}。", "一张{}的照片。", "这是一个{}。", "一个{}。"],
}


def _shape_task() -> ZeroShotTask:
    return ZeroShotTask(
        name="shape",
        classnames={"en": [s.en for s in SHAPES], "zh": [s.zh for s in SHAPES]},
        templates=SHAPE_TEMPLATES,
        attributes=[{"shape": s.key} for s in SHAPES],
    )


def _color_task() -> ZeroShotTask:
    return ZeroShotTask(
        name="color",
        classnames={"en": [c.en for c in COLORS], "zh": [c.zh for c in COLORS]},
        templates=COLOR_TEMPLATES,
        attributes=[{"color": c.key} for c in COLORS],
    )


def _color_shape_task() -> ZeroShotTask:
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    return ZeroShotTask(
        name="color_shape",
        classnames={"en": [f"{c.en} {s.en}" for c, s in pairs], "zh": [f"{c.zh}{s.zh}" for c, s in pairs]},
        templates=COLOR_SHAPE_TEMPLATES,
        attributes=[{"color": c.key, "shape": s.key} for c, s in pairs],
    )


DEMO_TASKS: dict[str, ZeroShotTask] = {t.name: t for t in (_shape_task(), _color_task(), _color_shape_task())}


def zero_shot_tasks() -> list[ZeroShotTask]:
    """Every demo zero-shot task, in a fixed order."""
    return list(DEMO_TASKS.values())


def get_task(name: str) -> ZeroShotTask:
    try:
        return DEMO_TASKS[name]
    except KeyError:
        raise CompressError(f"unknown demo task {name!r}; tasks: {', '.join(DEMO_TASKS)}") from None
