"""The exact models a bundle ships: towers wrapped so apps get L2-normalised embeddings.

Normalising inside the model means an app compares embeddings with a plain dot product and never
has to know the tower's output scale. The image model also takes pixels in [0, 1] and applies the
per-channel (x - mean) / std itself, so ExecuTorch apps only divide bytes by 255 and Core ML apps
hand over an image (its `ImageType` does the division).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ImageEncoderForExport(nn.Module):
    """RGB pixels `[1, 3, S, S]` in [0, 1] -> L2-normalised embedding `[1, D]`."""

    def __init__(self, tower: nn.Module, mean, std):
        super().__init__()
        self.tower = tower
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("inverse_std", 1.0 / torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tower((pixels - self.mean) * self.inverse_std), dim=-1)


class TextEncoderForExport(nn.Module):
    """Token ids `[1, L]` (int64; int32 on Core ML) -> L2-normalised embedding `[1, D]`."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tower(ids.long()), dim=-1)
