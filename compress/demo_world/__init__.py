"""The built-in bilingual demo world: procedural pictures of coloured shapes with English and Chinese captions.

    from compress.demo_world import DemoWorld, open_demo, evaluate_demo_tasks
    world = DemoWorld(image_size=64)
    scene = world.scene(0, "train")
    world.render(scene), world.caption(scene, "zh")   # e.g. "一个红色的大圆形在左边。"
    data = open_demo("train")                          # a torch Dataset of Samples, en and zh alternating

Eight shapes, eight colours, two sizes and five positions; one or two objects per scene; flat or
graded backgrounds and light pixel noise. Splits draw from disjoint seed ranges, so test scenes
are never training scenes. Zero-shot tasks (`shape`, `color`, `color_shape`) come with class names
and prompt templates in both languages and balanced single-object test sets.

The rest of compress reaches the demo world only as the registered `demo` data source
(`compress.demo_world.source.DemoSource`): `open_data("demo:val")`, `--dataset demo:shape`, the
`demo-shape` label set, the search proxy and the default tokenizer's corpus.
"""

from compress.demo_world.captions import CAPTION_LANGUAGES, caption
from compress.demo_world.dataset import DEFAULT_SIZES, DEMO_WORLD_VERSION, DemoDataset, open_demo
from compress.demo_world.evaluate import evaluate_demo_tasks
from compress.demo_world.scene import SPLITS, Scene, SceneObject, scene_seed, split_seed_range
from compress.demo_world.tasks import DEMO_TASKS, ZeroShotTask, get_task, zero_shot_tasks
from compress.demo_world.vocabulary import COLORS, POSITIONS, SHAPES, SIZES
from compress.demo_world.world import DEFAULT_IMAGE_SIZE, DemoWorld, alphabet


def task_samples(task, split: str = "test", count: int = 500, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0):
    """(images, labels): `count` balanced single-object images of a demo task."""
    return DemoWorld(image_size=image_size, seed=seed).task_samples(task, split=split, count=count)


def retrieval_pairs(split: str = "test", count: int = 500, lang: str = "en", image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0):
    """(images, captions): image i is described by caption i, in `lang`."""
    return DemoWorld(image_size=image_size, seed=seed).retrieval_pairs(split=split, count=count, lang=lang)


__all__ = [
    "CAPTION_LANGUAGES",
    "COLORS",
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_SIZES",
    "DEMO_TASKS",
    "DEMO_WORLD_VERSION",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "DemoDataset",
    "DemoWorld",
    "Scene",
    "SceneObject",
    "ZeroShotTask",
    "alphabet",
    "caption",
    "evaluate_demo_tasks",
    "get_task",
    "open_demo",
    "retrieval_pairs",
    "scene_seed",
    "split_seed_range",
    "task_samples",
    "zero_shot_tasks",
]
