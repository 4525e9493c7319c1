"""Teacher targets for a batch: the one seam between training and the (frozen) teacher.

The trainer never calls the teacher directly; it calls a targets object,
`targets(samples) -> {"image": Tensor [N, D] | None, "text": Tensor [N, D] | None}`, so a store of
precomputed teacher embeddings can stand in for `TeacherTargets` without the trainer changing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from compress.data.sample import Sample


@runtime_checkable
class Targets(Protocol):
    """What the trainer needs from a source of teacher embeddings."""

    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor | None]: ...


class TeacherTargets:
    """Computes targets online: the teacher embeds the batch's images and its captions, grouped by language.

    A tower the teacher lacks (or that `image=False` / `text=False` turns off) yields None.
    """

    def __init__(self, teacher, image: bool = True, text: bool = True):
        self.teacher = teacher
        self.image = image and bool(teacher.has_image_tower)
        self.text = text and bool(teacher.has_text_tower)

    @torch.no_grad()
    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor | None]:
        image = self.teacher.encode_images([s.image for s in samples]).float() if self.image else None
        text = self._encode_captions(samples) if self.text else None
        return {"image": image, "text": text}

    def _encode_captions(self, samples: Sequence[Sample]) -> torch.Tensor:
        """One teacher call per language; rows come back in the batch's order."""
        by_lang: dict[str, list[int]] = {}
        for row, sample in enumerate(samples):
            by_lang.setdefault(sample.lang, []).append(row)
        out: torch.Tensor | None = None
        for lang, rows in by_lang.items():
            embedded = self.teacher.encode_texts([samples[r].caption for r in rows], lang).float()
            if out is None:
                out = embedded.new_empty((len(samples), embedded.shape[1]))
            out[torch.tensor(rows, device=out.device)] = embedded
        if out is None:
            raise ValueError("an empty batch has no caption targets")
        return out
