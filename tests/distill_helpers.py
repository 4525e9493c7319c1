"""Small self-contained teacher, student and dataset for the distillation tests.

They honour the contracts in compress/protocols.py: the teacher is frozen with random weights and
either tower can be switched off; the student is an `nn.Module` with an image tower, a text tower,
its own preprocessing and a character tokenizer. The dataset pairs coloured images with captions
naming the colour (English or Chinese), so a student can really learn to align them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_model
from torch import nn

from compress.data.sample import Sample

IMAGE_SIZE = 8
TEXT_LENGTH = 12
VOCAB = 97
COLOURS = [
    ((220, 30, 30), "red", "红色"),
    ((30, 200, 40), "green", "绿色"),
    ((30, 40, 220), "blue", "蓝色"),
    ((230, 220, 40), "yellow", "黄色"),
]


def _pixels(images: list[Image.Image]) -> torch.Tensor:
    arrays = [np.asarray(im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE)), dtype=np.float32) / 255.0 for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _char_ids(texts: list[str]) -> torch.Tensor:
    ids = torch.zeros(len(texts), TEXT_LENGTH, dtype=torch.long)
    for row, text in enumerate(texts):
        codes = [1 + (ord(ch) % (VOCAB - 1)) for ch in text][:TEXT_LENGTH]
        ids[row, : len(codes)] = torch.tensor(codes, dtype=torch.long)
    return ids


class RandomTeacher:
    """A frozen random-weight teacher; `image=False` or `text=False` removes a tower."""

    languages = ("en", "zh")

    def __init__(self, embed_dim: int = 16, image: bool = True, text: bool = True, seed: int = 123):
        generator = torch.Generator().manual_seed(seed)
        self.embed_dim = embed_dim
        self.name = "random-test-teacher"
        self.fingerprint = f"random-test-teacher:{embed_dim}:{seed}"
        self._image = torch.randn(3 * IMAGE_SIZE * IMAGE_SIZE, embed_dim, generator=generator) if image else None
        self._text = torch.randn(VOCAB, embed_dim, generator=generator) if text else None
        self.calls: list[tuple[str, int, str | None]] = []

    @property
    def has_image_tower(self) -> bool:
        return self._image is not None

    @property
    def has_text_tower(self) -> bool:
        return self._text is not None

    def encode_images(self, images):
        if self._image is None:
            raise RuntimeError("this teacher has no image tower")
        self.calls.append(("image", len(images), None))
        return F.normalize(_pixels(images).flatten(1) @ self._image, dim=-1)

    def encode_texts(self, texts, lang):
        if self._text is None:
            raise RuntimeError("this teacher has no text tower")
        if lang not in self.languages:
            raise ValueError(f"language {lang!r} not served")
        self.calls.append(("text", len(texts), lang))
        ids = _char_ids(texts)
        counts = F.one_hot(ids, VOCAB).float()[:, :, 1:].sum(1)
        bag = torch.cat([torch.zeros(len(texts), 1), counts], dim=1)
        return F.normalize(bag @ self._text, dim=-1)


class TinyStudent(nn.Module):
    """Image tower: an MLP over 8x8 pixels (with dropout); text tower: mean of character embeddings."""

    def __init__(self, embed_dim: int = 16, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        self.config = {"embed_dim": embed_dim, "hidden": hidden, "dropout": dropout}
        self.embed_dim = embed_dim
        self.languages = ("en", "zh")
        self.image_tower = nn.Sequential(
            nn.Flatten(),
            nn.Linear(3 * IMAGE_SIZE * IMAGE_SIZE, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, embed_dim),
        )
        self.text_tower = _BagOfCharacters(embed_dim, hidden, dropout)

    has_image_tower = True
    has_text_tower = True

    def preprocess_images(self, images):
        return _pixels(images)

    def tokenize(self, texts):
        return _char_ids(texts)

    @torch.no_grad()
    def encode_images(self, images):
        return F.normalize(self.image_tower(self.preprocess_images(images)), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts, lang):
        return F.normalize(self.text_tower(self.tokenize(texts)), dim=-1)

    def save_pretrained(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "student.json").write_text(json.dumps(self.config))
        save_model(self, str(folder / "model.safetensors"))


class _BagOfCharacters(nn.Module):
    def __init__(self, embed_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, hidden, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, embed_dim)

    def forward(self, ids):
        mask = (ids != 0).float().unsqueeze(-1)
        pooled = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.proj(self.dropout(pooled))


class ColourPairs(torch.utils.data.Dataset):
    """`n` (image, caption, lang) samples; languages alternate. Indices in `bad` are skipped (None, counted once)."""

    def __init__(self, n: int = 48, seed: int = 0, bad: tuple[int, ...] = (), delay: float = 0.0):
        rng = np.random.default_rng(seed)
        self.colours = rng.integers(0, len(COLOURS), size=n).tolist()
        self.noise = rng.integers(-25, 26, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3))
        self.bad = set(bad)
        self.delay = delay
        self.skipped: Counter = Counter({"corrupt_image": len(self.bad)} if self.bad else {})

    def __len__(self):
        return len(self.colours)

    def __getitem__(self, index):
        if self.delay:
            time.sleep(self.delay)
        if index in self.bad:
            return None
        rgb, en, zh = COLOURS[self.colours[index]]
        pixels = np.clip(np.array(rgb)[None, None, :] + self.noise[index], 0, 255).astype(np.uint8)
        lang = "en" if index % 2 == 0 else "zh"
        caption = f"a {en} square" if lang == "en" else f"一个{zh}方块"
        return Sample(image=Image.fromarray(pixels, "RGB"), caption=caption, lang=lang, key=f"colour/{index}")


class Crash(Exception):
    pass


class CrashAfter(torch.utils.data.Dataset):
    """Raises once `reads` samples have been read, like a machine going down mid-epoch."""

    def __init__(self, base, reads: int):
        self.base, self.left = base, reads
        self.skipped = base.skipped

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        if self.left == 0:
            raise Crash(f"stopped before reading sample {index}")
        self.left -= 1
        return self.base[index]


class StallAfter(CrashAfter):
    """Hangs once `reads` samples have been read, like a job stuck mid-epoch until it is killed."""

    def __getitem__(self, index):
        if self.left == 0:
            time.sleep(3600)
        return super().__getitem__(index)


def make_student(seed: int = 0, **options) -> TinyStudent:
    torch.manual_seed(seed)
    return TinyStudent(**options)


RESUME_STEPS_PER_RUN = 16  # 24 samples / batch 6 = 4 steps per epoch, 2 epochs per stage, 2 stages


def resume_distiller(run_dir, data=None, student_seed: int = 0, **options):
    """The run the resume tests interrupt: both stages, warmup + cosine, dropout, checkpoints every 3 steps.
    Keyword options (device, precision, ...) go to the Distiller."""
    from compress.distill import Distiller

    return Distiller(
        RandomTeacher(embed_dim=24),
        make_student(seed=student_seed, embed_dim=16),
        data=data if data is not None else ColourPairs(24),
        run_dir=run_dir,
        batch_size=6,
        epochs=2,
        lr=1e-2,
        warmup_steps=2,
        checkpoint_every=3,
        stage2_losses={"infonce": 1.0, "affinity": 0.5},
        progress=False,
        seed=7,
        **options,
    )


DDP_STEPS_PER_RUN = 20  # 24 samples / global batch 5 = 5 steps per epoch (the last of 4), 2 epochs, 2 stages


def ddp_distiller(run_dir, **options):
    """The run the data-parallel tests compare: global batch 5 (so ranks get 3 and 2 samples, and the
    last batch of an epoch has 4), both stages with affinity and the feature term, no dropout (each
    rank draws its own dropout masks, which one process would draw differently)."""
    from compress.distill import Distiller

    options.setdefault("data", ColourPairs(24))
    return Distiller(
        RandomTeacher(embed_dim=24),
        make_student(seed=0, embed_dim=16, dropout=0.0),
        run_dir=run_dir,
        batch_size=5,
        epochs=2,
        lr=1e-2,
        warmup_steps=2,
        checkpoint_every=4,
        stage2_losses={"infonce": 1.0, "affinity": 0.5, "feature": 0.5},
        progress=False,
        seed=7,
        **options,
    )
