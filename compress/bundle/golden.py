"""golden.json (version 2) and golden/: exact model inputs and expected outputs, so a client proves
its tokenizer, preprocessing, models and classification without Python (docs/bundle-format.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from compress.bundle.layout import GOLDEN, GOLDEN_DIR, GOLDEN_FORMAT, GOLDEN_VERSION
from compress.bundle.preprocess import BundleTokenizer, image_input
from compress.bundle.runners import Runners
from compress.errors import CompressError

# Both languages, mixed scripts, digits, emoji, the empty text, odd whitespace and unseen characters;
# `long_text` adds one longer than max_length. No literal control or byte piece text (`<s>`, `<0x41>`):
# Hugging Face's Unigram matches those as one piece (see compress.bundle.tokenizer_json).
GOLDEN_TEXTS = (
    ("en", "a photo of a cat."),
    ("zh", "一张猫的照片。"),
    ("en", "Two red circles and 3 blue squares, left of the 🙂!"),
    ("zh", "左边有一个红色的大圆形，右边是2个蓝色方块。"),
    ("zh", "一个 red 圆形 and 两个 blue squares"),
    ("en", "2026-12-01 at 10:30: 42 squares, 7 circles"),
    ("en", "🐱🐶🚀✨"),
    ("en", ""),
    ("en", "  two  spaces,\ttabs and a new\nline "),
    ("zh", "罕见的字：龘靐齉"),
)
LONG_PHRASE = ("zh", "一个红色的大圆形在左边，")
TOP_K = 5


def long_text(tokenizer: BundleTokenizer) -> tuple[str, str]:
    """A text whose pieces overflow max_length, so the golden ids show truncation."""
    lang, phrase = LONG_PHRASE
    text = phrase
    while len(tokenizer.pieces(text)) <= tokenizer.max_length:
        text += phrase
    return lang, text


def golden_texts(tokenizer: BundleTokenizer, languages) -> list[tuple[str, str]]:
    return [(lang, text) for lang, text in (*GOLDEN_TEXTS, long_text(tokenizer)) if lang in languages]


def golden_pictures(image: Image.Image, size: int) -> list[Image.Image]:
    """The parity picture as it is, and a wider, larger copy so the resize and centre crop are exercised."""
    picture = image.convert("RGB")
    wide = picture.resize((int(size * 1.6) + 3, size + 9), Image.Resampling.BICUBIC)
    return [picture, wide]


def top_k(embedding: np.ndarray, labels: dict, logit_scale: float, k: int = TOP_K) -> list[dict]:
    """The k best classes: softmax of logit_scale x cosine, ties broken by the lower class index."""
    classes = np.asarray(labels["embeddings"], dtype=np.float64)
    cosine = classes @ np.asarray(embedding, dtype=np.float64)
    logits = logit_scale * cosine
    probability = np.exp(logits - logits.max())
    probability /= probability.sum()
    order = np.argsort(-probability, kind="stable")[:k]
    return [
        {"index": int(i), "class": labels["classnames"][i], "probability": float(probability[i]), "cosine": float(cosine[i])}
        for i in order
    ]


def _vector(tensor: torch.Tensor) -> list[float]:
    return [float(v) for v in tensor.reshape(-1)]


def write_golden(
    folder: Path,
    student,
    tokenizer: BundleTokenizer,
    manifest_image: dict,
    picture: Image.Image,
    eager: dict,
    runners: Runners,
    label_files: dict[str, dict],
    logit_scale: float,
) -> dict:
    """Write golden.json and golden/; returns its content.

    Embeddings come from the first target whose fp32 models run here (ExecuTorch when exported),
    else from the eager wrappers; `embedding_int8` from that target's int8 models when it has them.
    The ids written must equal the student's own, or the bundle would describe a tokenizer its
    models were not trained with.
    """
    reference = runners.reference_target()

    def run(tower: str, precision: str):
        if reference is None:
            return eager[tower] if precision == "fp32" else None
        return runners.get(reference, tower, precision)

    texts = []
    for lang, text in golden_texts(tokenizer, student.languages):
        ids = tokenizer(text)
        if not np.array_equal(ids, student.tokenize([text]).numpy()):
            raise CompressError(f"bundle tokenization of {text!r} differs from the student's tokenizer")
        item = {
            "lang": lang,
            "text": text,
            "ids": ids[0].tolist(),
            "embedding": _vector(run("text", "fp32")(torch.from_numpy(ids))),
        }
        if run("text", "int8") is not None:
            item["embedding_int8"] = _vector(run("text", "int8")(torch.from_numpy(ids)))
        texts.append(item)
    (folder / GOLDEN_DIR).mkdir(exist_ok=True)
    images = []
    for index, image in enumerate(golden_pictures(picture, manifest_image["size"])):
        file, pixels_file = f"{GOLDEN_DIR}/image_{index}.png", f"{GOLDEN_DIR}/image_{index}.pixels.f32"
        image.save(folder / file)
        pixels = image_input(Image.open(folder / file), manifest_image)  # from the PNG, as a client reads it
        (folder / pixels_file).write_bytes(pixels.astype("<f4").tobytes())
        embedding = run("image", "fp32")(torch.from_numpy(pixels))
        item = {
            "file": file,
            "pixels": pixels_file,
            "size": list(image.size),
            "input_shape": list(pixels.shape),
            "embedding": _vector(embedding),
        }
        if run("image", "int8") is not None:
            item["embedding_int8"] = _vector(run("image", "int8")(torch.from_numpy(pixels)))
        item["top5"] = {key: top_k(np.asarray(item["embedding"]), labels, logit_scale) for key, labels in label_files.items()}
        images.append(item)
    golden = {
        "format": GOLDEN_FORMAT,
        "version": GOLDEN_VERSION,
        "about": "Exact model inputs and outputs: clients check ids and pixels exactly (pixels within 1/255), "
        "embeddings by cosine > 0.999 and top5 by class index (docs/bundle-format.md).",
        "computed_with": f"{reference} fp32" if reference else "eager PyTorch fp32",
        "texts": texts,
        "images": images,
    }
    (folder / GOLDEN).write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return golden
