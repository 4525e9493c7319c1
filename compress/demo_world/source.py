"""The demo world as a registered data source (`compress.data` entry point "demo").

compress.open_data("demo:val", size=100)      # a split, with the demo's options
get_source("demo").zero_shot_tasks()          # shape, color, color_shape, with test images
get_source("demo").retrieval_pairs(200, "zh") # images and their Chinese captions
"""

from __future__ import annotations

from compress.demo_world.dataset import DEMO_WORLD_VERSION, open_demo
from compress.demo_world.tasks import zero_shot_tasks
from compress.demo_world.world import DEFAULT_IMAGE_SIZE, DemoWorld


class DemoSource:
    """The built-in bilingual demo world of coloured shapes; location: a split (train, val, test)."""

    title = "demo world"
    version = DEMO_WORLD_VERSION

    def open(
        self,
        location=None,
        *,
        on_bad: str = "skip",
        split: str | None = None,
        size: int | None = None,
        image_size: int = DEFAULT_IMAGE_SIZE,
        seed: int = 0,
    ):
        # Nothing in the demo world is ever bad input, so on_bad has nothing to decide.
        return open_demo(split=location or split or "train", size=size, image_size=image_size, seed=seed)

    def zero_shot_tasks(self):
        return zero_shot_tasks()

    def retrieval_pairs(self, count: int, lang: str, split: str = "test", image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0):
        return DemoWorld(image_size=image_size, seed=seed).retrieval_pairs(split=split, count=count, lang=lang)
