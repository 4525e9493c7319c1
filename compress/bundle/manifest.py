"""The manifest's sections as the exporter writes them, and the bundle's embedding-space identity."""

from __future__ import annotations

import hashlib
import json

from compress.bundle.layout import TOKENIZER_JSON, TOKENIZER_MODEL

TRUNCATION = "bos + first max_length-2 pieces + eos, then pad"


def image_section(describe_image: dict) -> dict:
    """`image`: size, mean/std, resize rule and the model input (normalisation inside the model)."""
    return {
        "size": int(describe_image["image_size"]),
        "mean": [float(v) for v in describe_image["mean"]],
        "std": [float(v) for v in describe_image["std"]],
        "resize": describe_image["resize"],
        "interpolation": describe_image.get("interpolation", "bilinear"),
        "input": {"color": "RGB", "layout": "NCHW", "dtype": "float32", "range": [0, 1], "normalization": "inside_model"},
    }


def text_section(describe_text: dict) -> dict:
    """`text`: tokenizer files, max_length, vocabulary size, special ids and the truncation rule."""
    return {
        "tokenizer": TOKENIZER_MODEL,
        "tokenizer_json": TOKENIZER_JSON,
        "max_length": int(describe_text["max_length"]),
        "vocab_size": int(describe_text["vocab_size"]),
        "pad_id": describe_text["pad_id"],
        "unk_id": describe_text["unk_id"],
        "bos_id": describe_text["bos_id"],
        "eos_id": describe_text["eos_id"],
        "truncation": TRUNCATION,
    }


def model_digest(manifest: dict, file: str) -> str | None:
    """A model's sha256: its file's, or for a folder (`.mlpackage`) the sha256 of the canonical JSON of
    `{path: sha256}` over the listed files inside it. None when the manifest lists nothing there."""
    listed = {entry["path"]: entry["sha256"] for entry in manifest.get("files", ())}
    if file in listed:
        return listed[file]
    inside = {path: digest for path, digest in listed.items() if path.startswith(file.rstrip("/") + "/")}
    return _canonical_sha256(inside) if inside else None


def _canonical_sha256(value) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()


def embedding_space(manifest: dict) -> str:
    """The identity of the image embeddings: the sha256 of the canonical JSON of embed_dim, the image
    section and every image model's digest. An app keys its photo index by it."""
    image_models = {m["file"]: model_digest(manifest, m["file"]) for m in manifest["models"] if m["tower"] == "image"}
    return _canonical_sha256({"embed_dim": manifest["embed_dim"], "image": manifest["image"], "image_models": image_models})
