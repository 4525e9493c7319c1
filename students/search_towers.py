"""What the student search needs from the bilingual family: tower defaults, a check, the tower, a tokenizer.

`compress.search` reaches this through the registered family (`BilingualStudent.towers`), so the
search never imports a student family's modules itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.errors import CompressError


class BilingualTowers:
    """The image (MobileViT) and text (TinyBERT-style) towers of the bilingual family, for search spaces."""

    @staticmethod
    def defaults(tower: str) -> dict[str, Any]:
        """The family's default options of one tower; text `vocab_size` defaults to the tokenizer's size."""
        from students.bilingual import DEFAULT_CONFIG

        defaults = copy.deepcopy(DEFAULT_CONFIG[tower])
        if tower == "text":
            defaults["vocab_size"] = DEFAULT_CONFIG["tokenizer_vocab_size"]
        return defaults

    @staticmethod
    def default_embed_dim() -> int:
        from students.bilingual import DEFAULT_CONFIG

        return int(DEFAULT_CONFIG["embed_dim"])

    @staticmethod
    def check(tower: str, options: dict[str, Any], embed_dim: int) -> None:
        """Refuse options that cannot be built, before anything slow runs."""
        if tower == "image":
            from students.mobilevit import LAYOUT_OPTIONS, MOBILEVIT_MODELS, check_layout, check_resolution

            if options["model"] not in MOBILEVIT_MODELS:
                raise CompressError(f"unknown MobileViT model {options['model']!r}; choose one of {', '.join(MOBILEVIT_MODELS)}")
            check_resolution(options["image_size"])
            check_layout(*(options[key] for key in LAYOUT_OPTIONS))
            checkpoint = options.get("checkpoint")
            if checkpoint is not None and not Path(checkpoint).expanduser().is_file():
                raise CompressError(f"{checkpoint}: no such image checkpoint")
            return
        from students.text_encoder import TextEncoder

        for key in ("layers", "hidden", "heads", "ffn", "max_length", "vocab_size"):
            if isinstance(options[key], bool) or not isinstance(options[key], int):
                raise CompressError(f"text {key} must be an integer, not {options[key]!r}")
        rest = {k: v for k, v in options.items() if k != "vocab_size"}
        with torch.device("meta"):  # checks every option without allocating the weights
            TextEncoder(options["vocab_size"], embed_dim, **rest)

    @staticmethod
    def train_tokenizer(captions: list[str], path: Path, vocab_size: int) -> Path:
        """A text tower's tokenizer trained on `captions`, written to `path` (as the recipe trains one)."""
        from students.tokenizer import train_tokenizer

        train_tokenizer(captions, path, vocab_size=vocab_size)
        return path

    @staticmethod
    def build(tower: str, options: dict[str, Any], embed_dim: int) -> nn.Module:
        """The tower with fresh weights from the current random state (or the image checkpoint)."""
        if tower == "image":
            from students.mobilevit import LAYOUT_OPTIONS, MobileViTImageTower

            layout = {key: options[key] for key in LAYOUT_OPTIONS}
            return MobileViTImageTower(
                options["model"], options["image_size"], embed_dim, checkpoint=options.get("checkpoint"), **layout
            )
        from students.text_encoder import TextEncoder

        return TextEncoder(options["vocab_size"], embed_dim, **{k: v for k, v in options.items() if k != "vocab_size"})
