"""`open_demo`: the demo world as a map-style torch Dataset of `Sample`s."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from torch.utils.data import Dataset

from compress.data.sample import Sample
from compress.demo_world.scene import SPLITS
from compress.demo_world.world import DEFAULT_IMAGE_SIZE, DemoWorld
from compress.errors import CompressError

DEMO_WORLD_VERSION = 2  # bump when scenes, rendering or captions change: it is part of every digest
DEFAULT_SIZES = {"train": 20000, "val": 500, "test": 1000}
SAMPLE_LANGUAGES = ("en", "zh")


class DemoDataset(Dataset):
    """Scenes 0..size-1 of one split. Languages alternate: even indices are English, odd Chinese.

    So any batch of two or more consecutive or shuffled samples sees both languages in about equal
    numbers. Each scene carries its own choice of caption template. Nothing is ever skipped; the
    `skipped` counter and `skip_log` exist so the demo behaves like every other data source.
    """

    def __init__(self, split: str = "train", size: int | None = None, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0):
        if split not in SPLITS:
            raise CompressError(f"unknown demo split {split!r}; splits: {', '.join(SPLITS)}")
        size = DEFAULT_SIZES[split] if size is None else size
        if not isinstance(size, int) or size < 1:
            raise CompressError(f"demo dataset size must be a positive integer, not {size!r}")
        self.world = DemoWorld(image_size=image_size, seed=seed)
        self.split, self.size = split, size
        self.skipped: Counter = Counter()
        self.skip_log: list = []

    def __len__(self) -> int:
        return self.size

    def language_of(self, index: int) -> str:
        return SAMPLE_LANGUAGES[index % len(SAMPLE_LANGUAGES)]

    def __getitem__(self, index: int) -> Sample:
        if not -self.size <= index < self.size:
            raise IndexError(f"demo {self.split} index {index} out of range for {self.size} samples")
        index %= self.size
        scene = self.world.scene(index, self.split)
        lang = self.language_of(index)
        return Sample(
            image=self.world.render(scene),
            caption=self.world.caption(scene, lang),
            lang=lang,
            key=f"demo/{self.split}/{index}",
        )

    def captions(self) -> list[tuple[str, str]]:
        """(caption, lang) of every sample, without rendering any image."""
        out = []
        for index in range(self.size):
            lang = self.language_of(index)
            out.append((self.world.caption(self.world.scene(index, self.split), lang), lang))
        return out

    def config(self) -> dict:
        return {
            "source": "demo",
            "version": DEMO_WORLD_VERSION,
            "split": self.split,
            "size": self.size,
            "image_size": self.world.image_size,
            "seed": self.world.seed,
            "languages": "alternate:" + ",".join(SAMPLE_LANGUAGES),
        }

    def digest(self) -> str:
        """sha256 hex of the dataset's configuration: equal digests mean identical samples."""
        return hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"DemoDataset(split={self.split!r}, size={self.size}, image_size={self.world.image_size}, seed={self.world.seed})"


def open_demo(split: str = "train", size: int | None = None, image_size: int = DEFAULT_IMAGE_SIZE, seed: int = 0) -> DemoDataset:
    """The demo world's `split` as a dataset (default sizes: train 20000, val 500, test 1000)."""
    return DemoDataset(split=split, size=size, image_size=image_size, seed=seed)
