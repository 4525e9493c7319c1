"""Scenes of the demo world and how they are drawn from a seed.

A scene is a plain description (objects, background, noise level); rendering and captioning are
pure functions of it. Every scene has an integer seed. Each split owns its own disjoint range of
seeds, so a test scene can never be a training scene, whatever the indices asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress.demo_world.vocabulary import COLORS, POSITIONS, SHAPES, SIZES, TWO_OBJECT_LAYOUTS
from compress.errors import CompressError

SPLITS = ("train", "val", "test")
SPLIT_SPAN = 10**12  # seeds per split
LABELLED_OFFSET = SPLIT_SPAN // 2  # single-object labelled scenes use the upper half of a split's range
TWO_OBJECT_PROBABILITY = 0.3
BACKGROUND_KINDS = ("flat", "linear", "radial")


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    position: str
    offset: tuple[float, float]  # jitter of the centre, as a fraction of the image side
    scale: float  # multiplies the size class radius
    rotation: float  # degrees
    tint: tuple[int, int, int]  # small per-object shift of the colour


@dataclass(frozen=True)
class Background:
    kind: str  # one of BACKGROUND_KINDS
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    angle: float  # direction of a linear gradient, degrees


@dataclass(frozen=True)
class Scene:
    seed: int
    split: str
    index: int
    objects: tuple[SceneObject, ...]
    background: Background
    noise_std: float  # Gaussian pixel noise, on the 0..255 scale
    caption_choice: int  # picks a caption template when none is asked for


def split_seed_range(split: str) -> range:
    """The seeds a split may use; ranges of different splits never intersect."""
    return range(_split_code(split) * SPLIT_SPAN, (_split_code(split) + 1) * SPLIT_SPAN)


def scene_seed(index: int, split: str, labelled: bool = False) -> int:
    """The seed of scene `index` in `split` (captioned scenes, or single-object labelled scenes)."""
    if not isinstance(index, (int, np.integer)) or index < 0 or index >= LABELLED_OFFSET:
        raise CompressError(f"demo scene index {index!r} is out of range 0..{LABELLED_OFFSET - 1}")
    start = split_seed_range(split).start
    return start + (LABELLED_OFFSET if labelled else 0) + int(index)


def _split_code(split: str) -> int:
    if split not in SPLITS:
        raise CompressError(f"unknown demo split {split!r}; splits: {', '.join(SPLITS)}")
    return SPLITS.index(split)


def sample_scene(
    seed: int,
    split: str,
    index: int,
    world_seed: int = 0,
    single_object: bool = False,
    fixed: dict[str, str] | None = None,
) -> Scene:
    """Draw the scene with this seed; `fixed` pins attributes (shape, color, size) of a single object."""
    rng = np.random.default_rng([world_seed, seed])
    two = not single_object and not fixed and rng.random() < TWO_OBJECT_PROBABILITY
    if two:
        layout = TWO_OBJECT_LAYOUTS[rng.integers(len(TWO_OBJECT_LAYOUTS))]
        positions = list(layout) if rng.random() < 0.5 else list(reversed(layout))
        objects = tuple(_sample_object(rng, position, jitter=0.015) for position in positions)
    else:
        position = POSITIONS[rng.integers(len(POSITIONS))].key
        objects = (_sample_object(rng, position, jitter=0.05, fixed=fixed or {}),)
    return Scene(
        seed=seed,
        split=split,
        index=int(index),
        objects=objects,
        background=_sample_background(rng),
        noise_std=float(rng.uniform(1.0, 8.0)),
        caption_choice=int(rng.integers(2**31)),
    )


def _sample_object(rng: np.random.Generator, position: str, jitter: float, fixed: dict[str, str] | None = None) -> SceneObject:
    fixed = fixed or {}
    shape = fixed.get("shape") or SHAPES[rng.integers(len(SHAPES))].key
    color = fixed.get("color") or COLORS[rng.integers(len(COLORS))].key
    size = fixed.get("size") or SIZES[rng.integers(len(SIZES))].key
    return SceneObject(
        shape=shape,
        color=color,
        size=size,
        position=position,
        offset=(float(rng.uniform(-jitter, jitter)), float(rng.uniform(-jitter, jitter))),
        scale=float(rng.uniform(0.92, 1.06)),
        rotation=float(rng.uniform(-12.0, 12.0)),
        tint=tuple(int(v) for v in rng.integers(-14, 15, size=3)),
    )


def _sample_background(rng: np.random.Generator) -> Background:
    kind = BACKGROUND_KINDS[rng.integers(len(BACKGROUND_KINDS))]
    colors = (_muted_colour(rng), _muted_colour(rng))
    return Background(kind=kind, colors=colors, angle=float(rng.uniform(0.0, 360.0)))


def _muted_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A low-saturation colour of middle brightness: never mistaken for an object colour."""
    grey = rng.uniform(95.0, 175.0)
    tint = rng.uniform(-18.0, 18.0, size=3)
    return tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
