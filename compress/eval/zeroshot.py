"""Zero-shot classification with any encoder that has `encode_images` and `encode_texts`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image


@torch.no_grad()
def class_embeddings(encoder, classnames: Sequence[str], templates: Sequence[str], lang: str) -> torch.Tensor:
    """[C, D]: each class is the normalised mean of its prompt-template embeddings."""
    rows = []
    for name in classnames:
        prompts = [t.format(name) for t in templates]
        mean = encoder.encode_texts(prompts, lang).float().mean(dim=0)
        rows.append(mean / mean.norm())
    return torch.stack(rows)


@torch.no_grad()
def image_embeddings(encoder, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
    chunks = [encoder.encode_images(list(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return torch.cat(chunks).float()


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
    return hits.float().mean().item()


@torch.no_grad()
def zero_shot_logits(encoder, images, classnames, templates, lang: str) -> torch.Tensor:
    """Cosine similarities [N, C] between images and class embeddings."""
    return image_embeddings(encoder, images) @ class_embeddings(encoder, classnames, templates, lang).T
