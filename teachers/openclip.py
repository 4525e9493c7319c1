"""OpenAI CLIP and every open_clip model: `open_clip.create_model_from_pretrained` and `get_tokenizer`.

Locations:

* "ViT-B-16" (an open_clip architecture; its default pretrained tag, "openai" where there is one,
  else the first tag open_clip lists; `pretrained=` picks another tag or a weights file);
* "ViT-B-16@laion2b_s34b_b88k" (architecture @ pretrained tag);
* "hf-hub:org/repo" (a hub repo holding open_clip_config.json and weights);
* a folder (or "local-dir:/folder") holding open_clip_config.json and open_clip_model.safetensors
  (or open_clip_pytorch_model.bin), loaded through open_clip's own "local-dir:" path, the same code
  path a hub repo takes once downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from compress.device import resolve_device
from compress.errors import CompressError
from teachers.base import CheckpointTeacher, parse_languages, resolve_dtype, vocab_digest
from teachers.sources import Source, hub_cache_dir, loading, looks_like_path

NAME = "open-clip"
DEFAULT_ARCH = "ViT-B-16"
PREFERRED_TAG = "openai"
HF_HUB = "hf-hub:"
LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
DEFAULT_LANGUAGES = ("en",)


class OpenClipTeacher(CheckpointTeacher):
    """An open_clip CLIP with its own image transform and tokenizer."""

    name = NAME

    def __init__(self, *, source: Source, model, transform, tokenizer, embed_dim: int, languages, device, batch_size):
        self.transform = transform
        self.tokenizer = tokenizer
        visual_preprocess = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
        super().__init__(
            model_id=source.model_id,
            model=model,
            embed_dim=embed_dim,
            languages=languages,
            device=device,
            batch_size=batch_size,
            preprocess={
                "image": visual_preprocess,
                "tokenizer": type(tokenizer).__name__,
                "vocab": vocab_digest(tokenizer),
                "context_length": getattr(tokenizer, "context_length", None),
            },
        )

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _embed_image_batch(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([self.transform(image) for image in images]).to(self.device, dtype=self._dtype)
        return self.model.encode_image(pixels)

    def _embed_text_batch(self, texts: list[str], lang: str) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts).to(self.device))


def _default_tag(arch: str) -> str:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(arch)
    if not tags:
        raise CompressError(
            f"{NAME} teacher: open_clip lists no pretrained weights for {arch!r}; pass pretrained=/path/to/weights "
            f"or a folder holding {CONFIG_FILE} and weights"
        )
    return PREFERRED_TAG if PREFERRED_TAG in tags else tags[0]


def _model_config(model_name: str, cache: str) -> dict:
    """The architecture config open_clip built the model from (a hub repo's is read from the cache)."""
    import open_clip
    from open_clip.pretrained import download_pretrained_from_hf

    if model_name.startswith(HF_HUB):
        path = download_pretrained_from_hf(model_name[len(HF_HUB) :], filename=CONFIG_FILE, cache_dir=cache)
        config = json.loads(Path(path).read_text(encoding="utf-8"))
        return config.get("model_cfg", config)
    return open_clip.get_model_config(model_name)


def resolve_open_clip(location: str | Path | None, pretrained: str | None) -> tuple[str, str | None, Source]:
    """(open_clip model name, pretrained tag or file, Source) for a location."""
    import open_clip

    text = str(location) if location else DEFAULT_ARCH
    if text.startswith(HF_HUB):
        return text, None, Source(NAME, text, is_local=False)
    if text.startswith(LOCAL_DIR):
        text = text[len(LOCAL_DIR) :]
    folder = Path(text).expanduser()
    if folder.is_dir():
        if not (folder / CONFIG_FILE).is_file():
            raise CompressError(f"{NAME} teacher: folder {folder} has no {CONFIG_FILE}")
        resolved = folder.resolve()
        return LOCAL_DIR + str(resolved), None, Source(NAME, str(resolved), is_local=True)
    if folder.exists():
        raise CompressError(f"{NAME} teacher: {text} is a file; give the folder holding {CONFIG_FILE} and weights")
    arch, _, tag = text.partition("@")
    if arch not in open_clip.list_models():
        if looks_like_path(text):
            raise CompressError(f"{NAME} teacher: no such folder {text}")
        raise CompressError(
            f"{NAME} teacher: {arch!r} is not an open_clip architecture (see open_clip.list_models()), a folder, or an hf-hub: id"
        )
    if tag and pretrained and tag != pretrained:
        raise CompressError(f"{NAME} teacher: {text!r} names tag {tag!r} but pretrained={pretrained!r}")
    chosen = tag or pretrained or _default_tag(arch)
    weights_file = Path(chosen).expanduser()
    if weights_file.is_file():
        return arch, str(weights_file), Source(NAME, f"{arch}@{weights_file.name}", is_local=True)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if chosen not in tags:
        raise CompressError(
            f"{NAME} teacher: {arch!r} has no pretrained tag {chosen!r} and no such weights file; "
            f"tags: {', '.join(tags) or 'none'}"
        )
    return arch, chosen, Source(NAME, f"{arch}@{chosen}", is_local=False)


def load_open_clip_teacher(
    location: str | Path | None = None,
    *,
    pretrained: str | None = None,
    device: str | None = "cpu",
    dtype: str = "float32",
    batch_size: int = 32,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    cache_dir: str | None = None,
) -> OpenClipTeacher:
    """OpenAI CLIP / open_clip image and text towers (en; default ViT-B-16 with OpenAI's weights).

    `location`: "ViT-B-16", "ViT-B-16@openai", "hf-hub:org/repo", or a folder holding
    open_clip_config.json + open_clip_model.safetensors. Serves English only by default (the
    OpenAI BPE vocabulary); pass languages= for a multilingual open_clip model.
    """
    import open_clip

    model_name, tag, source = resolve_open_clip(location, pretrained)
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    cache = cache_dir or hub_cache_dir()
    with loading(source):
        model, transform = open_clip.create_model_from_pretrained(
            model_name, pretrained=tag, device="cpu", cache_dir=cache, weights_only=True
        )
        tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache)
        embed_dim = int(_model_config(model_name, cache)["embed_dim"])
    return OpenClipTeacher(
        source=source,
        model=model.to(target, dtype=torch_dtype),
        transform=transform,
        tokenizer=tokenizer,
        embed_dim=embed_dim,
        languages=parse_languages(NAME, languages),
        device=target,
        batch_size=batch_size,
    )
