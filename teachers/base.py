"""What every checkpoint teacher shares: freezing, batching, normalisation, input checks, fingerprint.

A plugin subclasses `CheckpointTeacher` and supplies `_embed_image_batch` and/or `_embed_text_batch`
(unnormalised features for one batch, on the teacher's device) plus the facts the fingerprint is
made of: which checkpoint, and a description of its preprocessing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

import torch
from PIL import Image

from compress.errors import CompressError

# Bump when the shared encode path changes in a way that changes embeddings (it is part of every fingerprint).
PREPROCESS_VERSION = 1

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """float32 (default), float16 or bfloat16: the precision a teacher's weights are held in."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise CompressError(f"unsupported teacher dtype {dtype!r}; choose one of {', '.join(DTYPES)}")


def parse_languages(plugin: str, languages: str | Sequence[str]) -> tuple[str, ...]:
    """A teacher's served languages from a sequence or a comma-separated string ("zh,en")."""
    items = languages.split(",") if isinstance(languages, str) else list(languages)
    codes = tuple(str(code).strip() for code in items if str(code).strip())
    if not codes:
        raise CompressError(f"{plugin} teacher: languages must name at least one language code")
    return codes


def state_dict_digest(module: torch.nn.Module) -> str:
    """sha256 over every tensor of a module's state_dict: names, dtypes, shapes and raw bytes, in name order."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}|{flat.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def json_digest(value: Any) -> str:
    """sha256 of a JSON-able description (keys sorted; values JSON cannot hold are written as text)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def vocab_digest(tokenizer: Any) -> str:
    """sha256 of a tokenizer's vocabulary (Hugging Face `get_vocab()`, open_clip's `encoder` table)."""
    if hasattr(tokenizer, "get_vocab"):
        vocab = tokenizer.get_vocab()
    elif hasattr(tokenizer, "encoder"):
        vocab = tokenizer.encoder
    elif hasattr(tokenizer, "tokenizer"):
        return vocab_digest(tokenizer.tokenizer)
    else:
        raise TypeError(f"cannot read the vocabulary of {type(tokenizer).__name__}")
    return json_digest(sorted(vocab.items()))


def normalise(features: torch.Tensor) -> torch.Tensor:
    """float32 rows scaled to unit L2 norm."""
    return torch.nn.functional.normalize(features.float(), dim=-1)


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CheckpointTeacher:
    """A frozen pretrained model behind the Teacher protocol.

    Outputs are float32, L2-normalised, on the teacher's device. Inputs are embedded `batch_size` at a
    time, so any number of images or captions can be passed at once. A subclass defines
    `_embed_image_batch(images)` and/or `_embed_text_batch(texts, lang)`, each returning one batch's
    unnormalised features; the towers it defines are the towers it has.
    """

    name: str = ""

    def __init__(
        self,
        *,
        model_id: str,
        model: torch.nn.Module,
        embed_dim: int,
        languages: Sequence[str],
        device: torch.device,
        batch_size: int,
        preprocess: dict[str, Any],
    ):
        if int(batch_size) < 1:
            raise CompressError(f"{self.name} teacher: batch_size must be at least 1, not {batch_size}")
        self.model_id = model_id
        self.model = model.eval().requires_grad_(False)
        self.embed_dim = int(embed_dim)
        self.languages = tuple(languages)
        self.device = device
        self.batch_size = int(batch_size)
        self.preprocess = preprocess

    # A plugin has a tower exactly when it defines that tower's batch method.
    @property
    def has_image_tower(self) -> bool:
        return hasattr(self, "_embed_image_batch")

    @property
    def has_text_tower(self) -> bool:
        return hasattr(self, "_embed_text_batch")

    @torch.no_grad()
    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        """[N, embed_dim] float32, L2-normalised."""
        if not self.has_image_tower:
            raise CompressError(f"{self.name} teacher {self.model_id!r} has no image tower")
        images = list(images)
        for index, image in enumerate(images):
            if not isinstance(image, Image.Image):
                raise CompressError(f"{self.name} teacher: image {index} is a {type(image).__name__}, not a PIL image")
        if not images:
            return torch.empty(0, self.embed_dim, device=self.device)
        return torch.cat([normalise(self._embed_image_batch(list(batch))) for batch in chunks(images, self.batch_size)])

    @torch.no_grad()
    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        """[N, embed_dim] float32, L2-normalised; `lang` must be one of `languages`."""
        if not self.has_text_tower:
            raise CompressError(f"{self.name} teacher {self.model_id!r} has no text tower")
        if lang not in self.languages:
            served = ", ".join(self.languages)
            raise CompressError(f"{self.name} teacher {self.model_id!r} serves {served}, not {lang!r}")
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise CompressError(f"{self.name} teacher: text {index} is a {type(text).__name__}, not a str")
        if not texts:
            return torch.empty(0, self.embed_dim, device=self.device)
        return torch.cat([normalise(self._embed_text_batch(list(batch), lang)) for batch in chunks(texts, self.batch_size)])

    @cached_property
    def weights_digest(self) -> str:
        """sha256 of the loaded weights (computed on first use: hashing a large teacher takes seconds)."""
        return state_dict_digest(self.model)

    @cached_property
    def fingerprint(self) -> str:
        """plugin | model id | weights sha256 | preprocessing version and digest. Keys the teacher cache."""
        preprocess = json_digest(self.preprocess)[:12]
        return (
            f"{self.name}|{self.model_id}|weights=sha256:{self.weights_digest[:16]}|preprocess=v{PREPROCESS_VERSION}:{preprocess}"
        )

    def __repr__(self) -> str:
        towers = "+".join(t for t, on in (("image", self.has_image_tower), ("text", self.has_text_tower)) if on)
        return (
            f"{type(self).__name__}({self.model_id!r}, dim={self.embed_dim}, towers={towers}, "
            f"languages={self.languages}, device={self.device})"
        )
