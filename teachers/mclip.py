"""M-CLIP style multilingual text teachers: a transformers encoder, mean pooling, a linear projection.

Such an encoder was trained (M-CLIP: MSE against CLIP text embeddings of translated captions) into
the embedding space of one CLIP image tower, so it is a text-only teacher meant to be composed with
that image tower: {"image": "open-clip:ViT-B-16-plus-240@laion400m_e31", "text": "mclip"}.

Two checkpoint folder layouts load:

* M-CLIP's own (the M-CLIP/* hub repos): `config.json` with `"model_type": "M-CLIP"`, `modelBase`
  (the encoder architecture's hub id or folder), `transformerDimensions` and `numDims`; one weights
  file (`model.safetensors`, or `pytorch_model.bin` read with `weights_only=True`) holding
  `transformer.*` and `LinearTransformation.weight`/`.bias`; tokenizer files. The encoder's
  architecture config is read from `modelBase` (override with `base_model=`).
* A plain one: the encoder saved by `save_pretrained` (config.json, weights, tokenizer files) plus
  `projection.safetensors` holding `weight` [embed_dim, hidden] and optionally `bias` [embed_dim].
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from compress.device import resolve_device
from compress.errors import CompressError
from teachers.base import CheckpointTeacher, parse_languages, resolve_dtype
from teachers.hf_common import (
    fetch_file,
    hub_options,
    load_pretrained,
    refuse_missing,
    text_max_length,
    tokenizer_description,
)
from teachers.sources import Source, load_failure, loading, resolve_source

NAME = "mclip"
DEFAULT_MODEL = "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus"
DEFAULT_LANGUAGES = ("en", "zh")
DEFAULT_MAX_LENGTH = 77

PROJECTION_FILE = "projection.safetensors"
MCLIP_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MCLIP_ENCODER_PREFIX = "transformer."
MCLIP_PROJECTION_PREFIX = "LinearTransformation."
# Mean pooling never reads the encoder's pooler, so it is dropped (and need not be in the weights).
POOLER_PREFIX = "pooler."


class MeanPooledTextEncoder(torch.nn.Module):
    """Token states averaged over the attention mask, then projected into the CLIP space."""

    def __init__(self, encoder: torch.nn.Module, projection: torch.nn.Linear):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None
        self.encoder = encoder
        self.projection = projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return self.projection(pooled)


class MClipTeacher(CheckpointTeacher):
    """A text-only teacher; compose it with the image tower of the CLIP it was trained against."""

    name = NAME

    def __init__(
        self, *, source: Source, model: MeanPooledTextEncoder, tokenizer: Any, languages, device, batch_size, max_length
    ):
        self.tokenizer = tokenizer
        self.max_length = text_max_length(tokenizer, max_length)
        super().__init__(
            model_id=source.model_id,
            model=model.to(device),
            embed_dim=model.projection.out_features,
            languages=languages,
            device=device,
            batch_size=batch_size,
            preprocess={"pooling": "mean", **tokenizer_description(tokenizer, self.max_length)},
        )

    def _embed_text_batch(self, texts: list[str], lang: str) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return self.model(tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device))


def _linear(source: Source, weight: torch.Tensor, bias: torch.Tensor | None, hidden: int) -> torch.nn.Linear:
    if weight.ndim != 2 or weight.shape[1] != hidden or (bias is not None and bias.shape != weight.shape[:1]):
        got = f"weight {tuple(weight.shape)}" + (f", bias {tuple(bias.shape)}" if bias is not None else "")
        raise CompressError(
            f"{NAME} teacher {source.describe()}: the projection ({got}) does not take the encoder's hidden size {hidden}"
        )
    projection = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        projection.weight.copy_(weight)
        if bias is not None:
            projection.bias.copy_(bias)
    return projection


def _read_weights(source: Source, path: Path) -> dict[str, torch.Tensor]:
    with loading(source):
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)


def _load_plain_layout(source: Source, options: dict[str, Any], dtype: torch.dtype) -> MeanPooledTextEncoder:
    from safetensors.torch import load_file
    from transformers import AutoModel

    projection_path = fetch_file(source, PROJECTION_FILE, options)
    if projection_path is None:
        raise CompressError(
            f"{NAME} teacher {source.describe()}: no {PROJECTION_FILE} (weight [embed_dim, hidden], bias) "
            f"and config.json is not an M-CLIP config"
        )
    encoder = load_pretrained(AutoModel, source, options, dtype, unused_prefixes=(POOLER_PREFIX,))
    with loading(source):
        tensors = load_file(str(projection_path))
    if "weight" not in tensors:
        raise CompressError(f"{NAME} teacher {source.describe()}: {PROJECTION_FILE} has no 'weight' tensor")
    projection = _linear(source, tensors["weight"], tensors.get("bias"), encoder.config.hidden_size)
    return MeanPooledTextEncoder(encoder, projection.to(dtype))


def _base_source(base: str) -> Source:
    """Where an M-CLIP checkpoint's base encoder architecture is read from: a folder or a hub id."""
    return resolve_source(NAME, base, base) if Path(base).expanduser().is_dir() else Source(NAME, base, is_local=False)


def _hub_only(options: dict[str, Any]) -> dict[str, Any]:
    """The options of `hub_options` that also apply to the base encoder (its revision is not ours)."""
    return {k: v for k, v in options.items() if k in ("local_files_only", "trust_remote_code", "cache_dir")}


def _load_mclip_layout(
    source: Source, config: dict[str, Any], options: dict[str, Any], dtype: torch.dtype, base_model: str | None
) -> MeanPooledTextEncoder:
    from transformers import AutoConfig, AutoModel

    base = base_model or config.get("modelBase")
    if not base:
        raise CompressError(f"{NAME} teacher {source.describe()}: M-CLIP config.json names no modelBase; pass base_model=")
    base_source = _base_source(str(base))
    try:
        with loading(base_source):
            base_config = AutoConfig.from_pretrained(base_source.location, **hub_options(base_source, **_hub_only(options)))
    except CompressError as exc:
        raise CompressError(
            f"{NAME} teacher {source.describe()}: could not read the config of its base encoder {base!r} "
            f"({exc.__cause__ or exc}); pass base_model=/path/to/a folder holding that encoder's config.json"
        ) from exc
    weights_path = next(
        (path for path in (fetch_file(source, name, options) for name in MCLIP_WEIGHT_FILES) if path is not None),
        None,
    )
    if weights_path is None:
        raise CompressError(f"{NAME} teacher {source.describe()}: no weights file ({' or '.join(MCLIP_WEIGHT_FILES)})")
    state = _read_weights(source, weights_path)
    encoder_state = {k[len(MCLIP_ENCODER_PREFIX) :]: v for k, v in state.items() if k.startswith(MCLIP_ENCODER_PREFIX)}
    with loading(source):
        encoder = AutoModel.from_config(base_config, trust_remote_code=options.get("trust_remote_code", False))
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    with loading(source):
        result = encoder.load_state_dict(
            {k: v for k, v in encoder_state.items() if not k.startswith(POOLER_PREFIX)}, strict=False
        )
    refuse_missing(source, type(encoder).__name__, result.missing_keys)
    weight = state.get(MCLIP_PROJECTION_PREFIX + "weight")
    if weight is None:
        raise CompressError(f"{NAME} teacher {source.describe()}: the weights hold no {MCLIP_PROJECTION_PREFIX}weight")
    projection = _linear(source, weight, state.get(MCLIP_PROJECTION_PREFIX + "bias"), base_config.hidden_size)
    return MeanPooledTextEncoder(encoder, projection).to(dtype)


def _load_tokenizer(source: Source, encoder_config, options: dict[str, Any]):
    """The checkpoint's own tokenizer files, read as a tokenizer of its encoder's architecture."""
    from transformers import AutoTokenizer

    with loading(source):
        return AutoTokenizer.from_pretrained(source.location, config=encoder_config, **options)


def load_mclip_teacher(
    location: str | Path | None = None,
    *,
    device: str | None = "cpu",
    dtype: str = "float32",
    batch_size: int = 32,
    max_length: int = DEFAULT_MAX_LENGTH,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    base_model: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
) -> MClipTeacher:
    """M-CLIP multilingual text encoder, text only (en, zh; default M-CLIP/XLM-Roberta-Large-Vit-B-16Plus).

    `location` is a hub id or a folder in M-CLIP's layout or the plain layout (encoder saved by
    `save_pretrained` + projection.safetensors); see the module docstring.
    """
    source = resolve_source(NAME, location, DEFAULT_MODEL)
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    options = hub_options(
        source,
        revision=revision,
        local_files_only=local_files_only,
        trust_remote_code=trust_remote_code,
        cache_dir=cache_dir,
    )
    config_path = fetch_file(source, "config.json", options)
    if config_path is None:
        raise load_failure(source, FileNotFoundError("no config.json"))
    with loading(source):
        config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") == "M-CLIP":
        model = _load_mclip_layout(source, config, options, torch_dtype, base_model)
    else:
        model = _load_plain_layout(source, options, torch_dtype)
    tokenizer = _load_tokenizer(source, model.encoder.config, options)
    return MClipTeacher(
        source=source,
        model=model,
        tokenizer=tokenizer,
        languages=parse_languages(NAME, languages),
        device=target,
        batch_size=batch_size,
        max_length=max_length,
    )
