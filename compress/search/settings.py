"""Search settings the command line shows before anything heavy is imported: timing and proxy defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from compress.errors import CompressError

DEFAULT_WARMUP = 3  # untimed runs of each program before timing
DEFAULT_REPEATS = 15  # timed runs; the median is the latency


@dataclass
class ProxySettings:
    """How long and on how much data each candidate's proxy run trains and is scored."""

    steps: int = 30
    batch_size: int = 16
    train_samples: int = 480
    val_samples: int = 64
    zero_shot_count: int = 64  # test images per demo task
    lr: float = 2e-3
    loss: str = "smooth_l1"
    seed: int = 0
    image_size: int = 64  # the demo world's render size
    device: str = "auto"

    def __post_init__(self):
        for name in ("steps", "batch_size", "train_samples", "val_samples", "zero_shot_count", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CompressError(f"proxy {name} must be a positive integer, not {value!r}")
        if not self.lr > 0:
            raise CompressError(f"proxy lr must be > 0, not {self.lr!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
