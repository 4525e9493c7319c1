"""Teachers built from other teachers: an image tower from one and a text tower from another, or an ensemble.

    compress.load_teacher({"image": "open-clip:ViT-B-16-plus-240@laion400m_e31", "text": "mclip"})
    compress.load_teacher({"ensemble": ["altclip", "altclip:/models/altclip-ft"], "weights": [2, 1]})

Members are checked with `compress.protocols.check_teacher`, so a user's own teacher composes like a
plugin's. Each composed teacher has its own fingerprint, derived from its members' fingerprints (and the
weights), so a teacher cache written for one composition is never reused for another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image

from compress.errors import CompressError
from compress.protocols import check_teacher


def _describe(teacher) -> str:
    """ "altclip teacher 'BAAI/AltCLIP'" (or just the name for a teacher without a model id)."""
    name = getattr(teacher, "name", type(teacher).__name__)
    model_id = getattr(teacher, "model_id", None)
    return f"{name} teacher {model_id!r}" if model_id else f"{name} teacher"


def _model_id(teacher) -> str:
    return str(getattr(teacher, "model_id", None) or teacher.name)


class ImageTextTeacher:
    """The image tower of `image` and the text tower of `text` as one teacher.

    The normal use is a text encoder trained into a particular CLIP image space (M-CLIP) paired
    with that CLIP's image tower, or the paper's setting of separate image and text teachers.
    Either side may be None (an image-only or text-only teacher). Languages are the text side's.
    """

    name = "image-text"

    def __init__(self, image=None, text=None):
        if image is None and text is None:
            raise CompressError("an image-text teacher needs an image teacher, a text teacher, or both")
        image = check_teacher(image, "image-text teacher (image side)") if image is not None else None
        text = check_teacher(text, "image-text teacher (text side)") if text is not None else None
        if image is not None and not image.has_image_tower:
            raise CompressError(f"{_describe(image)} has no image tower, so it cannot be the image side")
        if text is not None and not text.has_text_tower:
            raise CompressError(f"{_describe(text)} has no text tower, so it cannot be the text side")
        if image is not None and text is not None and image.embed_dim != text.embed_dim:
            raise CompressError(
                f"embedding dims differ: {_describe(image)} embeds images in {image.embed_dim} dims, "
                f"{_describe(text)} embeds texts in {text.embed_dim} dims"
            )
        self.image, self.text = image, text
        self.embed_dim = (image or text).embed_dim
        self.languages = tuple(text.languages) if text is not None else ()
        self.model_id = f"{_model_id(image) if image else '-'}+{_model_id(text) if text else '-'}"
        self.fingerprint = f"image-text(image={image.fingerprint if image else '-'};text={text.fingerprint if text else '-'})"

    @property
    def has_image_tower(self) -> bool:
        return self.image is not None

    @property
    def has_text_tower(self) -> bool:
        return self.text is not None

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        if self.image is None:
            raise CompressError("this image-text teacher has no image tower")
        return self.image.encode_images(images)

    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        if self.text is None:
            raise CompressError("this image-text teacher has no text tower")
        return self.text.encode_texts(texts, lang)

    def __repr__(self) -> str:
        return f"ImageTextTeacher(image={self.image!r}, text={self.text!r})"


class EnsembleTeacher:
    """The weighted mean of several teachers' normalised embeddings, renormalised.

    Averaging only makes sense between teachers that embed into one space (checkpoints of one
    model, or text encoders trained into the same CLIP image space), so all dims must match.
    A tower is present only where every member has it (averaging over a subset would change what
    the embedding means between calls); languages are those every member serves. Weights default
    to equal and are scaled to sum to 1.
    """

    name = "ensemble"

    def __init__(self, teachers: Sequence, weights: Sequence[float] | None = None):
        teachers = [check_teacher(t, f"ensemble teacher (member {i})") for i, t in enumerate(teachers)]
        if not teachers:
            raise CompressError("an ensemble teacher needs at least one member")
        dims = {t.embed_dim for t in teachers}
        if len(dims) > 1:
            listing = ", ".join(f"{_describe(t)}: {t.embed_dim}" for t in teachers)
            raise CompressError(f"ensemble members must share one embedding dim ({listing})")
        if weights is None:
            weights = [1.0] * len(teachers)
        weights = [float(w) for w in weights]
        if len(weights) != len(teachers):
            raise CompressError(f"ensemble has {len(teachers)} members but {len(weights)} weights")
        if any(not math.isfinite(w) or w <= 0 for w in weights):
            raise CompressError(f"ensemble weights must be finite and positive, not {weights}")
        total = sum(weights)
        self.teachers = teachers
        self.weights = [w / total for w in weights]
        self.embed_dim = dims.pop()
        self._has_image = all(t.has_image_tower for t in teachers)
        self._has_text = all(t.has_text_tower for t in teachers)
        if not (self._has_image or self._has_text):
            raise CompressError("ensemble members share no tower: every image or every text tower is needed")
        self.languages = tuple(lang for lang in teachers[0].languages if all(lang in t.languages for t in teachers[1:]))
        if self._has_text and not self.languages:
            raise CompressError("ensemble members serve no language in common")
        self.model_id = "+".join(_model_id(t) for t in teachers)
        members = ";".join(f"{w:.6g}*{t.fingerprint}" for w, t in zip(self.weights, teachers, strict=True))
        self.fingerprint = f"ensemble({members})"

    @property
    def has_image_tower(self) -> bool:
        return self._has_image

    @property
    def has_text_tower(self) -> bool:
        return self._has_text

    @staticmethod
    def _mix(parts: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
        total = None
        for weight, part in zip(weights, parts, strict=True):
            term = weight * torch.nn.functional.normalize(part.float(), dim=-1)
            total = term if total is None else total + term.to(total.device)
        return torch.nn.functional.normalize(total, dim=-1)

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        if not self._has_image:
            raise CompressError("not every ensemble member has an image tower")
        return self._mix([t.encode_images(images) for t in self.teachers], self.weights)

    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        if not self._has_text:
            raise CompressError("not every ensemble member has a text tower")
        if lang not in self.languages:
            raise CompressError(f"ensemble teacher serves {', '.join(self.languages)}, not {lang!r}")
        return self._mix([t.encode_texts(texts, lang) for t in self.teachers], self.weights)

    def __repr__(self) -> str:
        return f"EnsembleTeacher({self.teachers!r}, weights={self.weights})"
