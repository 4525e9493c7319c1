"""`DemoWorld`: the procedural bilingual scene generator (scenes, pictures, captions, labelled sets)."""

from __future__ import annotations

import re
import unicodedata

from PIL import Image

from compress.demo_world import captions as _captions
from compress.demo_world.render import render_scene
from compress.demo_world.scene import Scene, sample_scene, scene_seed
from compress.demo_world.tasks import ZeroShotTask, get_task, zero_shot_tasks
from compress.demo_world.vocabulary import COLORS, POSITIONS, SHAPES, SIZES
from compress.errors import CompressError

DEFAULT_IMAGE_SIZE = 64


class DemoWorld:
    """Scenes of one or two coloured shapes on a plain or graded background, with light noise.

    Everything is a pure function of (world seed, split, index): the same call gives the same
    scene, pixels and captions on every machine. `image_size` only changes the rendering.
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0):
        if not isinstance(image_size, int) or image_size < 8:
            raise CompressError(f"demo image_size must be an integer of at least 8 pixels, not {image_size!r}")
        if not isinstance(seed, int) or seed < 0:
            raise CompressError(f"demo world seed must be a non-negative integer, not {seed!r}")
        self.image_size = image_size
        self.seed = seed

    def scene(self, index: int, split: str = "train") -> Scene:
        """Captioned scene `index` of `split` (one or two objects)."""
        return sample_scene(scene_seed(index, split), split, index, world_seed=self.seed)

    def labelled_scene(self, index: int, task: str | ZeroShotTask, split: str = "test") -> Scene:
        """A single-object scene of class `index % num_classes` of `task` (other attributes random)."""
        task = get_task(task) if isinstance(task, str) else task
        fixed = task.attributes[index % task.num_classes]
        return sample_scene(scene_seed(index, split, labelled=True), split, index, world_seed=self.seed, fixed=fixed)

    def render(self, scene: Scene) -> Image.Image:
        return render_scene(scene, self.image_size)

    def caption(self, scene: Scene, lang: str, variant: int | None = None) -> str:
        return _captions.caption(scene, lang, variant)

    def task_samples(
        self, task: str | ZeroShotTask, split: str = "test", count: int = 500
    ) -> tuple[list[Image.Image], list[int]]:
        """`count` rendered single-object images of `task` and their labels, classes balanced."""
        task = get_task(task) if isinstance(task, str) else task
        _check_count(count)
        images, labels = [], []
        for index in range(count):
            scene = self.labelled_scene(index, task, split)
            images.append(self.render(scene))
            labels.append(task.label_of(vars(scene.objects[0])))
        return images, labels

    def retrieval_pairs(self, split: str = "test", count: int = 500, lang: str = "en") -> tuple[list[Image.Image], list[str]]:
        """`count` images of `split` and their full captions in `lang` (image i matches caption i)."""
        _check_count(count)
        images, texts = [], []
        for index in range(count):
            scene = self.scene(index, split)
            images.append(self.render(scene))
            texts.append(self.caption(scene, lang, variant=0))
        return images, texts


def _check_count(count: int) -> None:
    if not isinstance(count, int) or count < 1:
        raise CompressError(f"demo sample count must be a positive integer, not {count!r}")


def alphabet() -> str:
    """Every character a demo caption or prompt can contain (NFKC-normalised, lower-cased, sorted)."""
    texts: list[str] = []
    for table in (_captions.SINGLE_TEMPLATES, _captions.PAIR_TEMPLATES):
        texts += [t for lang_templates in table.values() for t in lang_templates]
    for task in zero_shot_tasks():
        for lang in task.templates:
            texts += task.templates[lang] + task.classnames[lang]
    for terms in (SHAPES, COLORS, SIZES, POSITIONS):
        texts += [term.en for term in terms] + [term.zh for term in terms]
    texts.append("a an")
    text = unicodedata.normalize("NFKC", re.sub(r"\{[a-z_0-9]*\}", " ", "".join(texts))).lower()
    return "".join(sorted(set(text)))
