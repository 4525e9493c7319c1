"""Hugging Face dual-encoder CLIP teachers (AltCLIP, Chinese-CLIP), one loader driven by a table.

Each row of `FAMILIES` names a registered teacher, its transformers model and processor classes,
its default hub id, the languages it serves and its text context; `load_altclip_teacher` and
`load_chinese_clip_teacher` are the entry points (`compress.teachers`) the table makes. Another
transformers CLIP with `get_image_features` / `get_text_features` is one more row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from compress.device import resolve_device
from teachers.base import CheckpointTeacher, parse_languages, resolve_dtype
from teachers.hf_common import (
    hub_options,
    image_processor_description,
    load_pretrained,
    projected,
    text_max_length,
    tokenizer_description,
)
from teachers.sources import Source, loading, resolve_source


@dataclass(frozen=True)
class HFClipFamily:
    """One transformers CLIP family as a teacher plugin."""

    name: str  # the registered teacher name
    model_class: str  # a transformers class with get_image_features / get_text_features
    processor_class: str  # its processor: image processor + tokenizer
    default_model: str  # hub id used when no location is given
    languages: tuple[str, ...]  # served by default
    max_length: int  # default text context (tokens)
    summary: str  # the loader's one-line description (`compress plugins`)
    notes: str = ""


FAMILIES = {
    "altclip": HFClipFamily(
        name="altclip",
        model_class="AltCLIPModel",
        processor_class="AltCLIPProcessor",
        default_model="BAAI/AltCLIP",
        # AltCLIP's XLM-R text tower was aligned on Chinese and English; CLIP's 77-token context.
        languages=("zh", "en"),
        max_length=77,
        summary="AltCLIP image and text towers (zh, en; default BAAI/AltCLIP), the DC-CLIP paper's teacher.",
    ),
    "chinese-clip": HFClipFamily(
        name="chinese-clip",
        model_class="ChineseCLIPModel",
        processor_class="ChineseCLIPProcessor",
        default_model="OFA-Sys/chinese-clip-vit-base-patch16",
        # Chinese-CLIP was trained on Chinese captions with a text context of 52 tokens.
        languages=("zh",),
        max_length=52,
        summary="Chinese-CLIP image and text towers (zh; default OFA-Sys/chinese-clip-vit-base-patch16).",
        notes="It serves Chinese only by default: its BERT vocabulary also tokenizes English, but it was not "
        "trained on English captions; pass languages=['zh', 'en'] to use it for English anyway.",
    ),
}


class HFClipTeacher(CheckpointTeacher):
    """A transformers dual-encoder CLIP (`get_image_features` / `get_text_features`) and its processor.

    Images go through the checkpoint's own image processor; captions through its own tokenizer,
    padded per batch and truncated at `max_length`.
    """

    def __init__(
        self,
        *,
        name: str,
        source: Source,
        model: torch.nn.Module,
        processor: Any,
        languages: Sequence[str],
        device: torch.device,
        batch_size: int,
        max_length: int,
    ):
        self.name = name
        self.processor = processor
        self.max_length = text_max_length(processor.tokenizer, max_length)
        super().__init__(
            model_id=source.model_id,
            model=model.to(device),
            embed_dim=model.config.projection_dim,
            languages=languages,
            device=device,
            batch_size=batch_size,
            preprocess={
                **image_processor_description(processor.image_processor),
                **tokenizer_description(processor.tokenizer, self.max_length),
            },
        )

    def _embed_image_batch(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.device, dtype=self.model.dtype)
        return projected(self.model.get_image_features(pixel_values=pixels))

    def _embed_text_batch(self, texts: list[str], lang: str) -> torch.Tensor:
        tokens = self.processor.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return projected(self.model.get_text_features(**tokens.to(self.device)))


def load_hf_clip_teacher(
    family: HFClipFamily,
    location: str | Path | None = None,
    *,
    device: str | None = "cpu",
    dtype: str = "float32",
    batch_size: int = 32,
    max_length: int | None = None,
    languages: Sequence[str] | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
) -> HFClipTeacher:
    """Load one family's checkpoint and processor from a folder or the hub (`family.default_model` by default)."""
    import transformers

    source = resolve_source(family.name, location, family.default_model)
    served = parse_languages(family.name, languages if languages is not None else family.languages)
    target = resolve_device(device)
    options = hub_options(
        source, revision=revision, local_files_only=local_files_only, trust_remote_code=trust_remote_code, cache_dir=cache_dir
    )
    model = load_pretrained(getattr(transformers, family.model_class), source, options, resolve_dtype(dtype))
    with loading(source):
        processor = getattr(transformers, family.processor_class).from_pretrained(source.location, **options)
    return HFClipTeacher(
        name=family.name,
        source=source,
        model=model,
        processor=processor,
        languages=served,
        device=target,
        batch_size=batch_size,
        max_length=max_length if max_length is not None else family.max_length,
    )


def _loader(family: HFClipFamily) -> Callable[..., HFClipTeacher]:
    """The entry-point function of one family: `loader(location=None, **options)`."""

    def load(location: str | Path | None = None, **options) -> HFClipTeacher:
        return load_hf_clip_teacher(family, location, **options)

    load.__name__ = load.__qualname__ = f"load_{family.name.replace('-', '_')}_teacher"
    load.__doc__ = (
        f"{family.summary}\n\n"
        f"`location` is a hub id or a folder saved by `save_pretrained` (config.json, weights, tokenizer "
        f"files, preprocessor_config.json). Options: device, dtype, batch_size, max_length (default "
        f"{family.max_length}), languages (default {', '.join(family.languages)}), revision, local_files_only, "
        f"trust_remote_code, cache_dir. {family.notes}"
    ).strip()
    return load


load_altclip_teacher = _loader(FAMILIES["altclip"])
load_chinese_clip_teacher = _loader(FAMILIES["chinese-clip"])
