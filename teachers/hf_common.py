"""Loading Hugging Face transformers checkpoints safely (the CLIP teachers in hf_clip.py and M-CLIP share it).

Weights load through `from_pretrained` with `weights_only=True` (safetensors preferred; a `.bin`
file is read with `torch.load(weights_only=True)`), `trust_remote_code` stays off unless asked for,
and a checkpoint whose weights do not cover its architecture is refused: a randomly initialised
tensor would make embeddings and the fingerprint change from one load to the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from compress.errors import CompressError
from teachers.base import vocab_digest
from teachers.sources import Source, hub_cache_dir, loading

# A tokenizer's model_max_length above this means "no limit was recorded" (transformers uses 1e30).
UNSET_MAX_LENGTH = 1_000_000


def hub_options(
    source: Source,
    *,
    revision: str | None = None,
    local_files_only: bool = False,
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments every `from_pretrained` call of one teacher shares."""
    options: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
    if not source.is_local:
        options.update(
            revision=revision,
            local_files_only=bool(local_files_only),
            cache_dir=cache_dir or hub_cache_dir(),
        )
    return options


def fetch_file(source: Source, filename: str, options: dict[str, Any]) -> Path | None:
    """A file of the checkpoint on disk (downloaded or read from the cache for a hub id); None if absent."""
    if source.is_local:
        path = Path(source.location) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    with loading(source):
        try:
            return Path(
                hf_hub_download(
                    source.location,
                    filename,
                    revision=options.get("revision"),
                    cache_dir=options.get("cache_dir"),
                    local_files_only=options.get("local_files_only", False),
                )
            )
        except RemoteEntryNotFoundError:
            return None


def load_pretrained(
    model_class,
    source: Source,
    options: dict[str, Any],
    dtype: torch.dtype,
    *,
    unused_prefixes: tuple[str, ...] = (),
    **extra,
):
    """`model_class.from_pretrained` on `source`, refusing checkpoints with missing or mis-shaped weights.

    Missing tensors under `unused_prefixes` (parts the teacher drops, such as a pooler) are allowed.
    """
    with loading(source):
        model, info = model_class.from_pretrained(
            source.location,
            dtype=dtype,
            weights_only=True,
            output_loading_info=True,
            **options,
            **extra,
        )
    missing = sorted(set(info.get("missing_keys", ())) | {key[0] for key in info.get("mismatched_keys", ())})
    missing = [key for key in missing if not key.startswith(unused_prefixes)]
    refuse_missing(source, type(model).__name__, missing)
    return model


def refuse_missing(source: Source, architecture: str, missing: Sequence[str]) -> None:
    """Raise when a checkpoint leaves tensors of its architecture uninitialised."""
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise CompressError(
            f"{source.plugin} teacher {source.describe()}: the weights do not match the "
            f"{architecture} config ({len(missing)} tensors missing or mis-shaped: {shown})"
        )


def projected(output: Any) -> torch.Tensor:
    """The projected features of `get_text_features` / `get_image_features`.

    transformers 5 returns an output object whose `pooler_output` holds them; earlier releases
    returned the tensor itself.
    """
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def text_max_length(tokenizer: Any, requested: int) -> int:
    """`requested`, capped at the tokenizer's own limit when it records one."""
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < UNSET_MAX_LENGTH:
        return min(int(requested), limit)
    return int(requested)


def tokenizer_description(tokenizer: Any, max_length: int) -> dict[str, Any]:
    """What of a tokenizer shapes the embeddings: its class, vocabulary and truncation length."""
    return {"tokenizer": type(tokenizer).__name__, "vocab": vocab_digest(tokenizer), "max_length": max_length}


def image_processor_description(image_processor: Any) -> dict[str, Any]:
    """An image processor's class and settings (size, crop, mean, std, resampling...)."""
    settings = image_processor.to_dict() if hasattr(image_processor, "to_dict") else {}
    settings.pop("processor_class", None)
    return {"image_processor": type(image_processor).__name__, **settings}
