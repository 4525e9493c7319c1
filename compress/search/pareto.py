"""Pairs of image and text towers, their Pareto front (latency against proxy quality) and the pick.

A pair's latency is the image tower's plus the text tower's (one image and one caption embedded);
its size is the sum of the two `.pte` files. Its proxy quality follows `rank_by`:

- "val_loss": minus the sum of the two towers' stage-1 validation losses (higher is better);
- "zero_shot": the mean of the two towers' demo zero-shot accuracies.

A pair is on the front when no other pair is at least as fast and at least as good, and strictly
better in one of the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from compress.errors import CompressError

RANK_BY = ("val_loss", "zero_shot")
PICK_RULES = ("best", "fastest", "smallest")
T = TypeVar("T")


@dataclass
class Pair:
    image: Any  # CandidateResult
    text: Any
    quality: float

    @property
    def latency_ms(self) -> float:
        return self.image.latency_ms + self.text.latency_ms

    @property
    def size_mb(self) -> float:
        return self.image.measurement.pte_mb + self.text.measurement.pte_mb

    @property
    def params(self) -> int:
        return self.image.measurement.params + self.text.measurement.params

    @property
    def name(self) -> str:
        return f"{self.image.name} + {self.text.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image.name,
            "text": self.text.name,
            "latency_ms": round(self.latency_ms, 4),
            "size_mb": round(self.size_mb, 4),
            "params": self.params,
            "quality": self.quality,
        }


def tower_quality(result, rank_by: str) -> float:
    """One tower's proxy quality, higher is better."""
    if rank_by == "val_loss":
        return -result.proxy.val_loss
    if rank_by == "zero_shot":
        return result.proxy.zero_shot
    raise CompressError(f"rank_by must be one of {', '.join(RANK_BY)}, not {rank_by!r}")


def pair_quality(image, text, rank_by: str) -> float:
    if rank_by == "zero_shot":
        return (image.proxy.zero_shot + text.proxy.zero_shot) / 2
    return tower_quality(image, rank_by) + tower_quality(text, rank_by)


def pair_candidates(images: Sequence, texts: Sequence, size_mb: float | None, rank_by: str) -> list[Pair]:
    """Every image x text pair of equal embedding size whose two `.pte` files fit `size_mb` together."""
    pairs = []
    for image in images:
        for text in texts:
            if image.candidate.embed_dim != text.candidate.embed_dim:
                continue
            pair = Pair(image, text, pair_quality(image, text, rank_by))
            if size_mb is None or pair.size_mb <= size_mb:
                pairs.append(pair)
    return pairs


def dominates(a_cost: float, a_quality: float, b_cost: float, b_quality: float) -> bool:
    """a is at least as cheap and at least as good as b, and strictly better in one."""
    return a_cost <= b_cost and a_quality >= b_quality and (a_cost < b_cost or a_quality > b_quality)


def pareto_front(items: Sequence[T], cost: Callable[[T], float], quality: Callable[[T], float]) -> list[T]:
    """The items no other item dominates, fastest first."""
    front = [
        item
        for item in items
        if not any(dominates(cost(other), quality(other), cost(item), quality(item)) for other in items if other is not item)
    ]
    return sorted(front, key=lambda item: (cost(item), -quality(item)))


def pick(front: Sequence[Pair], rule: str = "best") -> Pair:
    """The chosen pair: "best" proxy quality, "fastest" latency, or "smallest" total `.pte` size."""
    if not front:
        raise CompressError("nothing to pick from: the front is empty")
    if rule == "best":
        return max(front, key=lambda p: (p.quality, -p.latency_ms))
    if rule == "fastest":
        return min(front, key=lambda p: (p.latency_ms, -p.quality))
    if rule == "smallest":
        return min(front, key=lambda p: (p.size_mb, -p.quality))
    raise CompressError(f"--pick must be one of {', '.join(PICK_RULES)}, not {rule!r}")
