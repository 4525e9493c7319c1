"""AltCLIP (BAAI) through transformers' AltCLIPModel and AltCLIPProcessor: DC-CLIP's teacher."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from teachers.base import parse_languages
from teachers.hf_common import HFClipTeacher, load_hf_clip_teacher
from teachers.sources import resolve_source

NAME = "altclip"
DEFAULT_MODEL = "BAAI/AltCLIP"

# AltCLIP's XLM-R text tower was aligned on Chinese and English; CLIP's 77-token context.
DEFAULT_LANGUAGES = ("zh", "en")
DEFAULT_MAX_LENGTH = 77


def load_altclip_teacher(
    location: str | Path | None = None,
    *,
    device: str | None = "cpu",
    dtype: str = "float32",
    batch_size: int = 32,
    max_length: int = DEFAULT_MAX_LENGTH,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    revision: str | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
) -> HFClipTeacher:
    """AltCLIP image and text towers (zh, en; default BAAI/AltCLIP), the DC-CLIP paper's teacher.

    `location` is a hub id or a folder saved by `save_pretrained` (config.json, weights,
    sentencepiece/tokenizer files, preprocessor_config.json).
    """
    from transformers import AltCLIPModel, AltCLIPProcessor

    return load_hf_clip_teacher(
        name=NAME,
        model_class=AltCLIPModel,
        processor_class=AltCLIPProcessor,
        source=resolve_source(NAME, location, DEFAULT_MODEL),
        languages=parse_languages(NAME, languages),
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        max_length=max_length,
        revision=revision,
        local_files_only=local_files_only,
        trust_remote_code=trust_remote_code,
        cache_dir=cache_dir,
    )
