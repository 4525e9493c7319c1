"""Chinese-CLIP (OFA-Sys) through transformers' ChineseCLIPModel and ChineseCLIPProcessor."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from teachers.base import parse_languages
from teachers.hf_common import HFClipTeacher, load_hf_clip_teacher
from teachers.sources import resolve_source

NAME = "chinese-clip"
DEFAULT_MODEL = "OFA-Sys/chinese-clip-vit-base-patch16"

# Chinese-CLIP was trained on Chinese captions with a text context of 52 tokens.
DEFAULT_LANGUAGES = ("zh",)
DEFAULT_MAX_LENGTH = 52


def load_chinese_clip_teacher(
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
    """Chinese-CLIP image and text towers (zh; default OFA-Sys/chinese-clip-vit-base-patch16).

    `location` is a hub id or a folder saved by `save_pretrained` (config.json, weights, tokenizer
    files, preprocessor_config.json). It serves Chinese only by default: its BERT vocabulary also
    tokenizes English, but it was not trained on English captions; pass languages=["zh", "en"] to
    use it for English anyway.
    """
    from transformers import ChineseCLIPModel, ChineseCLIPProcessor

    return load_hf_clip_teacher(
        name=NAME,
        model_class=ChineseCLIPModel,
        processor_class=ChineseCLIPProcessor,
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
