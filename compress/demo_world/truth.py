"""Which captions are true of which pictures.

A caption states some attributes of each object ("a red circle." states colour and shape of one
object). It is true of a scene with the same number of objects when its objects can be matched
one-to-one to the scene's objects with every stated attribute equal. "a photo of a circle." is
true of every single-circle picture, not only the one it was written for; contrastive training
and retrieval scoring use this to count every true pair as a match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compress.demo_world.scene import Scene
from compress.demo_world.vocabulary import COLORS, POSITIONS, SHAPES, SIZES

_ATTRIBUTES = {
    name: {term.key: index for index, term in enumerate(terms)}
    for name, terms in (("shape", SHAPES), ("color", COLORS), ("size", SIZES), ("position", POSITIONS))
}
_ORDER = tuple(_ATTRIBUTES)
_ANY, _ABSENT = -1, -2  # an unstated attribute matches anything; a missing object matches nothing stated
MAX_OBJECTS = 2


def _encode(objects: Sequence[dict[str, str]], missing: int) -> list[list[int]]:
    rows = [[_ATTRIBUTES[name][obj[name]] if name in obj else missing for name in _ORDER] for obj in objects]
    return rows + [[missing] * len(_ORDER)] * (MAX_OBJECTS - len(rows))


def truth_matrix(claims: Sequence[tuple[dict[str, str], ...]], scenes: Sequence[Scene]) -> np.ndarray:
    """[len(claims), len(scenes)] booleans: entry (i, j) says caption i is true of scene j."""
    stated = np.array([_encode(c, _ANY) for c in claims])  # [N, 2, 4]
    present = np.array([_encode([vars(o) for o in s.objects], _ABSENT) for s in scenes])  # [M, 2, 4]
    claim_counts = np.array([len(c) for c in claims])
    scene_counts = np.array([len(s.objects) for s in scenes])

    def agree(a: int, b: int) -> np.ndarray:
        c, o = stated[:, None, a], present[None, :, b]
        return ((c == _ANY) | (c == o)).all(axis=-1)

    in_order = agree(0, 0) & agree(1, 1)
    swapped = agree(0, 1) & agree(1, 0)
    return (claim_counts[:, None] == scene_counts[None, :]) & (in_order | swapped)
