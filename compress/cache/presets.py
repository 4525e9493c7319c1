"""Cache settings the command line shows before anything heavy is imported: augmentation presets and defaults."""

from __future__ import annotations

from typing import Any

DEFAULT_BATCH_SIZE = 64
DEFAULT_SHARD_SIZE = 1024

_CROP = {"crop_scale": (0.35, 1.0), "crop_ratio": (3 / 4, 4 / 3), "flip_p": 0.5}
AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "crop-flip": dict(_CROP),
    "randaug-lite": {**_CROP, "brightness": 0.3, "contrast": 0.3, "saturation": 0.3},
}
