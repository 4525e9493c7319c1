"""The bilingual student: a MobileViT image tower and a TinyBERT-style multilingual text tower.

    student = build_bilingual_student({})                       # the default, phone-sized student
    student = build_bilingual_student({"image": {"model": "mobilevitv2_100", "image_size": 256},
                                       "text": {"layers": 6}, "tokenizer": "tokenizer.model"})
    student.save_pretrained("runs/x/student"); BilingualStudent.from_pretrained("runs/x/student")

The family is registered as `BilingualStudent` (`compress.students` entry point "bilingual"): its
`from_config` builds, its `from_pretrained` loads a saved folder, whose `student.json` records
`family: bilingual`.

One text tower serves both languages: `lang` is checked against `languages` but not fed to the
model, so the student learns a single multilingual space (Chinese and English captions of the
same picture should land together).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from compress.api import STUDENT_CONFIG
from compress.errors import CompressError
from compress.files import save_tensors_atomically, write_json_atomically
from compress.protocols import LANGUAGES
from students.mobilevit import LAYOUT_OPTIONS, MobileViTImageTower
from students.preprocessing import ImagePreprocessing
from students.search_towers import BilingualTowers
from students.text_encoder import TextEncoder
from students.tokenizer import FILENAME as TOKENIZER_FILE
from students.tokenizer import SentencePieceTokenizer, default_tokenizer

FAMILY = "bilingual"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = STUDENT_CONFIG  # the framework reads `family` from it

# The default trains in minutes on two CPU cores on the demo world's 64 px images and stays
# phone-sized: about 1.2M image parameters and 2.8M text parameters with the demo tokenizer's
# 2.3k-piece vocabulary (an 8k vocabulary adds 1.4M to the text tower's embedding table).
DEFAULT_CONFIG: dict[str, Any] = {
    "embed_dim": 256,
    "image": {
        "model": "mobilevitv2_050",
        "image_size": 64,
        "checkpoint": None,  # a local timm checkpoint of the same model; None starts random
        "drop_path_rate": 0.0,
        "width": 1.0,  # the layout options of students.mobilevit; 1.0 and null keep timm's model as it is
        "stage_strides": None,
        "act": None,
        "mean": None,  # None takes the backbone's own (timm's pretrained config)
        "std": None,
        "resize": "shorter_side_center_crop",
    },
    "text": {
        "layers": 4,
        "hidden": 256,
        "heads": 4,
        "ffn": 512,
        "max_length": 32,
        "pooling": "mean",
        "norm": "pre",
        "dropout": 0.0,
        "vocab_size": None,  # taken from the tokenizer; a different number is refused
    },
    "tokenizer": None,  # path to a tokenizer.model; None trains (once, cached) on the demo captions
    "tokenizer_vocab_size": 8000,
    "tokenizer_model_type": "unigram",
}


class BilingualStudent(nn.Module):
    """A CLIP-style student with the same `encode_images` / `encode_texts` as a teacher.

    `image_tower` and `text_tower` are the exportable parts (unnormalised outputs, static shapes);
    either may be None for a single-tower student. `config` rebuilds the architecture.
    """

    def __init__(
        self,
        image_tower: MobileViTImageTower | None,
        text_tower: TextEncoder | None,
        tokenizer: SentencePieceTokenizer | None,
        preprocessing: ImagePreprocessing | None,
        config: dict[str, Any],
        embed_dim: int,
        languages: tuple[str, ...] = LANGUAGES,
    ):
        super().__init__()
        if image_tower is None and text_tower is None:
            raise CompressError("a student needs an image tower, a text tower, or both")
        if text_tower is not None and tokenizer is None:
            raise CompressError("a student with a text tower needs a tokenizer")
        self.image_tower = image_tower
        self.text_tower = text_tower
        self.tokenizer = tokenizer
        self.preprocessing = preprocessing
        self.config = config
        self.embed_dim = embed_dim
        self.languages = tuple(languages)

    @property
    def has_image_tower(self) -> bool:
        return self.image_tower is not None

    @property
    def has_text_tower(self) -> bool:
        return self.text_tower is not None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def image_size(self) -> int:
        self._require("image")
        return self.image_tower.image_size

    @property
    def max_length(self) -> int:
        self._require("text")
        return self.text_tower.max_length

    def _require(self, tower: str) -> None:
        if tower == "image" and self.image_tower is None:
            raise CompressError("this student has no image tower")
        if tower == "text" and self.text_tower is None:
            raise CompressError("this student has no text tower")

    def preprocess_images(self, images: list[Image.Image]) -> torch.Tensor:
        """`[N, 3, S, S]` float32 pixels for `image_tower` (CPU)."""
        self._require("image")
        return self.preprocessing(images)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """`[N, max_length]` int64 ids for `text_tower` (CPU): bos, pieces, eos, pad 0."""
        self._require("text")
        return self.tokenizer.encode(texts, self.text_tower.max_length)

    @torch.no_grad()
    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        """`[N, embed_dim]` float32, L2-normalised, on the student's device."""
        pixels = self.preprocess_images(images)
        if len(pixels) == 0:
            return torch.empty(0, self.embed_dim, device=self.device)
        with eval_mode(self.image_tower):
            return F.normalize(self.image_tower(pixels.to(self.device)).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        """`[N, embed_dim]` float32, L2-normalised, on the student's device; `lang` is "en" or "zh"."""
        if lang not in self.languages:
            raise CompressError(f"the student serves languages {', '.join(self.languages)}; got {lang!r}")
        ids = self.tokenize(texts)
        if len(ids) == 0:
            return torch.empty(0, self.embed_dim, device=self.device)
        with eval_mode(self.text_tower):
            return F.normalize(self.text_tower(ids.to(self.device)).float(), dim=-1)

    def example_pixels(self, batch_size: int = 1) -> torch.Tensor:
        """A pixel batch of the shape the image tower exports with."""
        return torch.zeros(batch_size, 3, self.image_size, self.image_size)

    def example_ids(self, batch_size: int = 1) -> torch.Tensor:
        """An id batch of the shape the text tower exports with (real captions, padded)."""
        return self.tokenize(["a photo of a cat"] * batch_size)

    def describe(self) -> dict[str, Any]:
        """What a bundle manifest needs: embedding size, image preprocessing, text length and ids."""
        out: dict[str, Any] = {"family": FAMILY, "embed_dim": self.embed_dim, "languages": list(self.languages)}
        if self.has_image_tower:
            out["image"] = self.preprocessing.as_dict()
        if self.has_text_tower:
            out["text"] = {
                "max_length": self.max_length,
                "vocab_size": self.tokenizer.vocab_size,
                "pad_id": self.tokenizer.pad_id,
                "bos_id": self.tokenizer.bos_id,
                "eos_id": self.tokenizer.eos_id,
                "unk_id": self.tokenizer.unk_id,
                "tokenizer_file": TOKENIZER_FILE,
            }
        return out

    def save_pretrained(self, folder: str | Path) -> None:
        """Write `model.safetensors`, `student.json` and `tokenizer.model`, each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.tokenizer is not None:
            self.tokenizer.save(folder / TOKENIZER_FILE)
        save_tensors_atomically(folder / WEIGHTS_FILE, self.state_dict(), metadata={"format": "pt", "family": FAMILY})
        saved_config = copy.deepcopy(self.config)
        saved_config["tokenizer"] = TOKENIZER_FILE if self.tokenizer is not None else None
        if saved_config.get("image"):
            saved_config["image"]["checkpoint"] = None  # the weights are in model.safetensors now
        state = {"family": FAMILY, "format_version": FORMAT_VERSION, "config": saved_config, **self.describe()}
        write_json_atomically(folder / CONFIG_FILE, state)

    towers = BilingualTowers  # what `compress search` needs to build and check this family's towers

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None) -> BilingualStudent:
        """A new student of this family from a config dict (`{}` is the phone-sized default)."""
        return _build(config or {})

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> BilingualStudent:
        """Rebuild a student saved by `save_pretrained`, with its weights and tokenizer."""
        folder = Path(folder)
        if not folder.is_dir():
            raise CompressError(f"{folder}: no such student folder")
        config = _read_student_config(folder / CONFIG_FILE)
        tokenizer = None
        if config.get("text") is not None:
            tokenizer = SentencePieceTokenizer.from_file(folder / TOKENIZER_FILE)
            config["tokenizer"] = str(folder / TOKENIZER_FILE)  # so `config` alone rebuilds this student
        student = _build(config, tokenizer=tokenizer)
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise CompressError(f"{weights}: missing student weights")
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CompressError(f"{weights}: unreadable safetensors file ({exc})") from None
        try:
            student.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            reason = " ".join(str(exc).split())[:300]
            raise CompressError(f"{weights}: weights do not fit the architecture in {CONFIG_FILE} ({reason})") from None
        return student


def _read_student_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CompressError(f"{path}: missing student config")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompressError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(state, dict) or state.get("family") != FAMILY or not isinstance(state.get("config"), dict):
        raise CompressError(f"{path}: not a {FAMILY} student config (needs family={FAMILY!r} and a config object)")
    if state.get("format_version") != FORMAT_VERSION:
        version = state.get("format_version")
        raise CompressError(f"{path}: format_version {version!r} is not supported (expected {FORMAT_VERSION})")
    return state["config"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Evaluation mode inside the block; every submodule's own train/eval flag is restored after."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """The defaults overlaid with `config`; unknown keys are refused so a typo is not ignored."""
    if not isinstance(config, dict):
        raise CompressError(f"a student config is a dict, not {type(config).__name__}")
    merged = copy.deepcopy(DEFAULT_CONFIG)
    for key, value in config.items():
        if key not in DEFAULT_CONFIG:
            raise CompressError(f"unknown student config key {key!r}; known: {', '.join(DEFAULT_CONFIG)}")
        if key in ("image", "text") and value is not None:
            if not isinstance(value, dict):
                raise CompressError(f"student config {key!r} is a dict of options or null, not {value!r}")
            for option in value:
                if option not in DEFAULT_CONFIG[key]:
                    raise CompressError(f"unknown {key} option {option!r}; known: {', '.join(DEFAULT_CONFIG[key])}")
            merged[key].update(copy.deepcopy(value))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _build(config: dict[str, Any], tokenizer: SentencePieceTokenizer | None = None) -> BilingualStudent:
    config = resolve_config(config)
    embed_dim = int(config["embed_dim"])
    if embed_dim < 1:
        raise CompressError(f"student embed_dim must be positive, got {embed_dim}")

    image_tower = preprocessing = None
    if config["image"] is not None:
        image = config["image"]
        if image["checkpoint"] is not None:
            image["checkpoint"] = str(image["checkpoint"])
        image_tower = MobileViTImageTower(
            image["model"],
            image["image_size"],
            embed_dim,
            checkpoint=image["checkpoint"],
            drop_path_rate=image["drop_path_rate"],
            **{key: image[key] for key in LAYOUT_OPTIONS},
        )
        for key, own in (("mean", image_tower.mean), ("std", image_tower.std)):
            value = own if image[key] is None else image[key]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
                raise CompressError(f"image {key} must be a list of 3 numbers, got {value!r}")
            image[key] = [float(v) for v in value]
        preprocessing = ImagePreprocessing(image["image_size"], tuple(image["mean"]), tuple(image["std"]), image["resize"])

    text_tower = None
    if config["text"] is not None:
        text = config["text"]
        if tokenizer is None and config["tokenizer"]:
            config["tokenizer"] = str(config["tokenizer"])
            tokenizer = SentencePieceTokenizer.from_file(config["tokenizer"])
        elif tokenizer is None:
            tokenizer = default_tokenizer(config["tokenizer_vocab_size"], config["tokenizer_model_type"])
        if text["vocab_size"] is not None and text["vocab_size"] != tokenizer.vocab_size:
            raise CompressError(
                f"text vocab_size {text['vocab_size']} does not match the tokenizer's {tokenizer.vocab_size} ({tokenizer.source})"
            )
        text["vocab_size"] = tokenizer.vocab_size
        options = {k: v for k, v in text.items() if k != "vocab_size"}
        text_tower = TextEncoder(tokenizer.vocab_size, embed_dim, pad_id=tokenizer.pad_id, **options)
    else:
        tokenizer = None

    return BilingualStudent(image_tower, text_tower, tokenizer, preprocessing, config, embed_dim)


def build_bilingual_student(config: dict[str, Any] | None = None) -> BilingualStudent:
    """Bilingual (Chinese + English) MobileViT + TinyBERT student; `{}` gives the phone-sized default."""
    return _build(config or {})
