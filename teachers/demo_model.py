"""The demo teacher's network: a small convolutional image tower, a character-level text
transformer, and the character tokenizer they are trained with."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

PAD_ID, UNK_ID = 0, 1
SPECIAL_TOKENS = 2
WHERE_CHANNELS = 4  # per-cell channels that keep the layout of the image grid


def normalise_text(text: str) -> str:
    """NFKC (full-width punctuation to half-width) and lower case: what the tokenizer sees."""
    return unicodedata.normalize("NFKC", text).lower()


class CharTokenizer:
    """One id per character of a fixed alphabet; characters outside it map to UNK_ID.

    Ids: 0 padding, 1 unknown, then the alphabet in the order given (kept with the weights, so a
    saved teacher keeps its vocabulary even if the demo world later learns new words).
    """

    def __init__(self, alphabet: str, context_length: int):
        chars = "".join(dict.fromkeys(normalise_text(alphabet)))
        self.alphabet = chars
        self.context_length = context_length
        self._ids = {c: i + SPECIAL_TOKENS for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + SPECIAL_TOKENS

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(c, UNK_ID) for c in normalise_text(text)][: self.context_length]

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """[N, L] int64 ids padded with PAD_ID to the longest text (at most `context_length`)."""
        rows = [self.encode(t) or [UNK_ID] for t in texts]
        ids = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids


class ImagePreprocess:
    """PIL images to a [N, 3, S, S] float batch in [-1, 1]: RGB, then a bilinear (antialiased)
    resize to the square, skipped for images already that size."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        side = (self.image_size, self.image_size)
        arrays = []
        for image in images:
            image = image if image.mode == "RGB" else image.convert("RGB")
            if image.size != side:
                image = image.resize(side, Image.Resampling.BILINEAR)
            arrays.append(np.asarray(image))
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous().float()
        return batch.div_(127.5).sub_(1.0)


class ConvImageTower(nn.Module):
    """Four conv-BN-ReLU blocks: a stride-2 stem, then three that each end in a 2x max-pool (64 px
    in, a 4x4 grid out). The embedding reads the grid twice: average- and max-pooled over space
    (what is there, wherever it is: one shape detector serves every position) and a small
    per-cell summary (where it is: captions also say "on the left")."""

    def __init__(self, image_size: int, width: int, embed_dim: int):
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        channels = width
        for k in range(1, 4):
            out = width * 2**k
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        grid = image_size // 16
        self.where = nn.Conv2d(channels, WHERE_CHANNELS, 1)
        self.head = nn.Linear(2 * channels + WHERE_CHANNELS * grid * grid, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.features(pixels)
        what = torch.cat([grid.mean(dim=(2, 3)), grid.amax(dim=(2, 3))], dim=1)
        return self.head(torch.cat([what, self.where(grid).flatten(1)], dim=1))


class CharTextTower(nn.Module):
    """Character embeddings, a stride-2 convolution that merges neighbouring characters (halving the
    sequence the transformer sees), learned positions, a pre-norm transformer encoder, and masked
    mean pooling."""

    def __init__(self, vocab_size: int, context_length: int, width: int, layers: int, heads: int, embed_dim: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width, padding_idx=PAD_ID)
        self.merge = nn.Conv1d(width, width, kernel_size=4, stride=2, padding=1)
        self.position_embedding = nn.Parameter(torch.randn((context_length + 1) // 2, width) * 0.02)
        block = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.projection = nn.Linear(width, embed_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] % 2:  # an even length keeps every character inside a merged pair
            ids = F.pad(ids, (0, 1), value=PAD_ID)
        x = self.merge(self.token_embedding(ids).transpose(1, 2)).transpose(1, 2)
        # a merged position is padding when both of its characters are padding
        padding = (ids == PAD_ID).view(ids.shape[0], -1, 2).all(dim=-1)
        x = x + self.position_embedding[: x.shape[1]]
        x = self.norm(self.encoder(x, src_key_padding_mask=padding))
        keep = (~padding).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.projection(pooled)


class DemoCLIP(nn.Module):
    """Image and text towers in one embedding space, with a learnable temperature."""

    def __init__(self, config: dict, vocab_size: int):
        super().__init__()
        self.image_tower = ConvImageTower(config["image_size"], config["width"], config["embed_dim"])
        self.text_tower = CharTextTower(
            vocab_size,
            config["context_length"],
            config["text_width"],
            config["text_layers"],
            config["text_heads"],
            config["embed_dim"],
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config["init_temperature"])))
        self.image_tower.to(memory_format=torch.channels_last)  # about a quarter faster for these convolutions on CPU

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_tower(pixels.contiguous(memory_format=torch.channels_last)), dim=-1)

    def encode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_tower(ids), dim=-1)
