"""Turning pictures and texts into model inputs exactly as the manifest tells an app to.

This is the specification the phone apps and `examples/python` follow: Pillow for images (RGB,
bilinear resize with Pillow's antialiasing, centre crop), SentencePiece for text (ids of the raw
string, bos + pieces + eos, truncated and padded to `max_length`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sentencepiece as spm
from PIL import Image

from compress.errors import CompressError


def _on_white(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("RGB")


def resized_rgb(image: Image.Image, size: int, resize: str) -> Image.Image:
    """The picture as RGB (transparency composited on white), `size` x `size`, by the manifest's resize rule."""
    image = _on_white(image)
    if resize == "squash":
        return image.resize((size, size), Image.Resampling.BILINEAR)
    if resize != "shorter_side_center_crop":
        raise CompressError(f"unknown image resize rule {resize!r}")
    width, height = image.size
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left = int(round((new_w - size) / 2.0))
    top = int(round((new_h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def image_input(image: Image.Image, manifest_image: dict) -> np.ndarray:
    """`[1, 3, S, S]` float32 RGB in [0, 1] for the image model (normalisation happens inside it)."""
    picture = resized_rgb(image, manifest_image["size"], manifest_image["resize"])
    array = np.asarray(picture, dtype=np.float32) / 255.0  # [S, S, 3]
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None])


class BundleTokenizer:
    """SentencePiece ids laid out as the manifest says: bos, pieces, eos, pad."""

    def __init__(self, model_path: str | Path, manifest_text: dict):
        self.max_length = int(manifest_text["max_length"])
        self.pad_id, self.bos_id, self.eos_id = manifest_text["pad_id"], manifest_text["bos_id"], manifest_text["eos_id"]
        try:
            self._sp = spm.SentencePieceProcessor(model_file=str(model_path))
        except (OSError, RuntimeError) as exc:
            raise CompressError(f"{model_path}: not a SentencePiece model ({exc})") from None
        if self._sp.get_piece_size() != manifest_text["vocab_size"]:
            raise CompressError(
                f"{model_path}: vocabulary of {self._sp.get_piece_size()} pieces, manifest says {manifest_text['vocab_size']}"
            )

    def pieces(self, text: str) -> list[int]:
        """The piece ids of a text, without bos, eos or padding."""
        return self._sp.encode(text, out_type=int)

    def __call__(self, text: str) -> np.ndarray:
        """`[1, max_length]` int64."""
        pieces = self.pieces(text)[: self.max_length - 2]
        ids = np.full((1, self.max_length), self.pad_id, dtype=np.int64)
        row = [self.bos_id, *pieces, self.eos_id]
        ids[0, : len(row)] = row
        return ids
