"""The contracts every teacher, student and export target meets.

Teachers and students both embed PIL images and captions into one L2-normalised space, so one
evaluation path serves both and a trained student can teach a smaller one. Each owns its own
tokenizer and image preprocessing: a student never shares the teacher's vocabulary or image size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

LANGUAGES = ("en", "zh")


@runtime_checkable
class Encoder(Protocol):
    """Anything that embeds images and texts into a shared, L2-normalised space."""

    embed_dim: int
    languages: tuple[str, ...]

    @property
    def has_image_tower(self) -> bool: ...

    @property
    def has_text_tower(self) -> bool: ...

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        """[N, embed_dim] float32, L2-normalised; raises if there is no image tower."""
        ...

    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        """[N, embed_dim] float32, L2-normalised; raises if there is no text tower or `lang` is not served."""
        ...


@runtime_checkable
class Teacher(Encoder, Protocol):
    """A frozen encoder. Either tower may be absent (image-only or text-only teachers are normal).

    `fingerprint` is model id + weights digest + preprocessing version; it keys the teacher cache.
    """

    name: str
    fingerprint: str


@runtime_checkable
class Student(Encoder, Protocol):
    """A trainable `nn.Module` with an image tower and a text tower.

    `image_tower(pixels [N,3,H,W]) -> [N,D]` and `text_tower(ids [N,L] int64) -> [N,D]` are the
    exportable parts (unnormalised outputs, static shapes). `preprocess_images` and `tokenize` turn
    raw inputs into their tensors. `config` is a plain dict that rebuilds the same architecture.
    """

    config: dict[str, Any]
    image_tower: torch.nn.Module
    text_tower: torch.nn.Module

    def preprocess_images(self, images: list[Image.Image]) -> torch.Tensor: ...

    def tokenize(self, texts: list[str]) -> torch.Tensor: ...

    def save_pretrained(self, folder: str | Path) -> None: ...


@runtime_checkable
class Target(Protocol):
    """An export target: turns one student tower into a file a phone runtime loads."""

    name: str
    suffix: str

    def export(self, module: torch.nn.Module, example: torch.Tensor, path: Path, **options) -> Path: ...
