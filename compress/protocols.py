"""The contracts every teacher, student, loss and export target meets, and the checks that enforce them.

Teachers and students both embed PIL images and captions into one L2-normalised space, so one
evaluation path serves both and a trained student can teach a smaller one. Each owns its own
tokenizer and image preprocessing: a student never shares the teacher's vocabulary or image size.

`check_teacher`, `check_student` and `check_encoder` run where such an object enters the library
(the Distiller, evaluation, the teacher cache): an object that falls short gets one `CompressError`
listing everything it lacks, instead of an AttributeError from deep inside a training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

from compress.errors import CompressError

LANGUAGES = ("en", "zh")
TOWERS = ("image", "text")


@runtime_checkable
class Encoder(Protocol):
    """Anything that embeds images and texts into a shared, L2-normalised space."""

    embed_dim: int
    languages: tuple[str, ...]

    @property
    def has_image_tower(self) -> bool: ...

    @property
    def has_text_tower(self) -> bool: ...

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        """[N, embed_dim] float32, L2-normalised; raises if there is no image tower."""
        ...

    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        """[N, embed_dim] float32, L2-normalised; raises if there is no text tower or `lang` is not served."""
        ...


@runtime_checkable
class Teacher(Encoder, Protocol):
    """A frozen encoder. Either tower may be absent (image-only or text-only teachers are normal).

    `fingerprint` is model id + weights digest + preprocessing version; it keys the teacher cache.
    """

    name: str
    fingerprint: str


@runtime_checkable
class Student(Encoder, Protocol):
    """A trainable `nn.Module` with an image tower and a text tower.

    `image_tower(pixels [N,3,H,W]) -> [N,D]` and `text_tower(ids [N,L] int64) -> [N,D]` are the
    exportable parts (unnormalised outputs, static shapes). `preprocess_images` and `tokenize` turn
    raw inputs into their tensors. `config` is a plain dict that rebuilds the same architecture.

    A student family registers under `compress.students` an entry point naming a class (or object)
    with `from_config(config) -> Student` and `from_pretrained(folder) -> Student`; a plain factory
    `build(config) -> Student` is accepted too but cannot reload a saved folder. `save_pretrained`
    writes `student.json` with a `family` key naming that entry point, which `compress.build_student(folder)`
    uses to reload it.
    """

    config: dict[str, Any]
    image_tower: torch.nn.Module
    text_tower: torch.nn.Module

    def preprocess_images(self, images: list[Image.Image]) -> torch.Tensor: ...

    def tokenize(self, texts: list[str]) -> torch.Tensor: ...

    def save_pretrained(self, folder: str | Path) -> None: ...


@dataclass(frozen=True)
class TowerExport:
    """One tower to export at one precision, as the bundle hands it to a target.

    `module` takes `example` (pixels `[1, 3, S, S]` float32 in [0, 1], or token ids `[1, L]` int64)
    and returns an L2-normalised `[1, embed_dim]` embedding. `calibration` holds real inputs of the
    same shape (preprocessed training pictures or token ids of training captions) for precisions
    that need them; `scheme` is the int8 scheme asked for this tower, when one was.
    """

    tower: str
    module: torch.nn.Module
    example: torch.Tensor
    precision: str
    embed_dim: int
    calibration: tuple[torch.Tensor, ...] = ()
    scheme: str | None = None

    def output_spec(self) -> dict[str, Any]:
        return {"name": "embedding", "shape": [1, int(self.embed_dim)]}


@runtime_checkable
class Target(Protocol):
    """An export target, registered under the `compress.targets` entry-point group.

    The entry point names a class (or factory) called with no arguments. The bundle drives it only
    through this protocol: `precisions(quantize, requested)` says which precisions it writes for a
    `quantize` setting ("none" or "int8"; `requested` is the user's explicit list, checked), and
    `export_tower(job, folder)` writes one tower at one precision inside the bundle folder and
    returns its manifest model entries: `target`, `tower`, `precision`, `file` (relative to the
    folder), `input` (`name`, `kind` "tensor" or "image", `shape`, `dtype`), `output`, and
    optionally `delegation` (a summary of how the runtime runs it). A target may also offer
    `load(path)`, returning a callable that runs a written file on this machine (canonical input
    tensor in, `[1, D]` float32 tensor out) for parity checks, or None where it cannot run here,
    and `needs_calibration(precision)`.
    """

    name: str
    suffix: str

    def precisions(self, quantize: str, requested: Sequence[str] | None = None) -> list[str]: ...

    def export_tower(self, job: TowerExport, folder: Path) -> list[dict[str, Any]]: ...


# ---------------------------------------------------------------------------- losses

LOSS_KINDS = {
    "feature": "forward(student [N, D], teacher [N, D]) -> scalar: one student tower against the teacher's "
    "embeddings of the same inputs (stage 1, and feature terms of stage 2)",
    "pair": "forward(image [N, D], text [N, D]) -> scalar: the student's own image and text embeddings, "
    "row i of each a positive pair (stage 2)",
    "affinity": "forward(student_image, student_text, teacher_image, teacher_text, logit_scale=None) -> scalar: "
    "the student's image-text similarities against the teacher's (stage 2)",
}


@runtime_checkable
class Loss(Protocol):
    """A training loss, registered under the `compress.losses` entry-point group.

    The entry point names an `nn.Module` class. It is built as `cls(weight=w, **options)`, where
    `w` is the term's weight and `options` come from the Distiller's `loss_options[name]`; it
    returns a weighted scalar tensor. Its `kind` (a class attribute, one of `LOSS_KINDS`) says
    which inputs it takes and so which stage uses it: a "feature" loss can be `stage1_loss` or a
    stage-2 term, "pair" and "affinity" losses are stage-2 terms. A loss's own parameters (a
    learnable temperature) are trained with the stage that uses it; a "pair" or "affinity" loss
    with a `scale()` method gives the student's logit scale (recorded in the report and the bundle).
    """

    kind: str

    def forward(self, *embeddings: torch.Tensor, **options) -> torch.Tensor: ...


def loss_kind(loss_class, name: str) -> str:
    """The `kind` a registered loss declares; a loss without a valid one is refused."""
    kind = getattr(loss_class, "kind", None)
    if kind not in LOSS_KINDS:
        where = f"{getattr(loss_class, '__module__', '?')}.{getattr(loss_class, '__qualname__', loss_class)!s}"
        raise CompressError(
            f"loss {name!r} ({where}) declares kind {kind!r}; a loss class sets "
            f"kind = one of {', '.join(repr(k) for k in LOSS_KINDS)}"
        )
    return kind


# ---------------------------------------------------------------------------- checks at the entry points


def _callable(obj, attribute: str) -> bool:
    return callable(getattr(obj, attribute, None))


def _declared_tower(obj, tower: str) -> bool | None:
    """An object's own `has_<tower>_tower`, or None when it does not say."""
    try:
        value = getattr(obj, f"has_{tower}_tower")
    except AttributeError:
        return None
    return bool(value)


def _towers(obj, encode_methods: bool) -> dict[str, bool]:
    """Which towers an object has: what it declares, else (when `encode_methods`) whether its encode method exists."""
    towers = {}
    for tower, method in (("image", "encode_images"), ("text", "encode_texts")):
        declared = _declared_tower(obj, tower)
        towers[tower] = declared if declared is not None else (encode_methods and _callable(obj, method))
    return towers


def _languages(obj) -> tuple[str, ...] | None:
    languages = getattr(obj, "languages", None)
    if isinstance(languages, str) or not isinstance(languages, Sequence):
        return None
    if not all(isinstance(code, str) and code for code in languages):
        return None
    return tuple(languages)


def _refuse(what: str, obj, where: str, lacks: list[str]) -> None:
    if lacks:
        raise CompressError(
            f"{where}: the {what} {type(obj).__name__} lacks {'; '.join(lacks)} (see the "
            f"{what.capitalize()} protocol in compress/protocols.py and the README)"
        )


def _probe_width(obj, towers: dict[str, bool], languages: tuple[str, ...] | None, where: str) -> int:
    """`embed_dim` from one probe: a grey image or a one-word caption through the encoder."""
    if towers["image"]:
        method, embedded = "encode_images", obj.encode_images([Image.new("RGB", (32, 32), (128, 128, 128))])
    else:
        method, embedded = "encode_texts", obj.encode_texts(["a photo"], (languages or LANGUAGES)[0])
    shape = tuple(getattr(embedded, "shape", ()))
    if len(shape) != 2 or shape[0] != 1 or shape[1] < 1:
        raise CompressError(f"{where}: {type(obj).__name__}.{method} on one input returned shape {shape}, not [1, embed_dim]")
    return int(shape[1])


class OwnTeacher:
    """A user's teacher seen through the full Teacher protocol, with the defaults it left out filled in.

    Towers are present where the encode method exists (unless the object says otherwise),
    `embed_dim` comes from one probe, `name` from the class. The user's object is not modified;
    every other attribute is read from it.
    """

    def __init__(self, teacher, *, name: str, embed_dim: int, towers: dict[str, bool], languages: tuple[str, ...]):
        self.wrapped = teacher
        self.name, self.embed_dim, self.languages = name, embed_dim, languages
        self._towers = towers

    @property
    def has_image_tower(self) -> bool:
        return self._towers["image"]

    @property
    def has_text_tower(self) -> bool:
        return self._towers["text"]

    @property
    def fingerprint(self) -> str:
        return str(self.wrapped.fingerprint)

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        if not self.has_image_tower:
            raise CompressError(f"teacher {self.name} has no image tower")
        return self.wrapped.encode_images(images)

    def encode_texts(self, texts: list[str], lang: str) -> torch.Tensor:
        if not self.has_text_tower:
            raise CompressError(f"teacher {self.name} has no text tower")
        return self.wrapped.encode_texts(texts, lang)

    def __getattr__(self, attribute: str):
        if attribute == "wrapped":  # not set yet (copy, pickle): no recursion
            raise AttributeError(attribute)
        return getattr(self.wrapped, attribute)

    def __repr__(self) -> str:
        return f"OwnTeacher({self.wrapped!r})"


def check_teacher(teacher, where: str):
    """`teacher` if it meets the Teacher protocol, else an `OwnTeacher` view of it with the allowed defaults.

    Required: `fingerprint` (a non-empty string: it keys the teacher cache), at least one of
    `encode_images(images)` / `encode_texts(texts, lang)`, and `languages` when it embeds texts.
    Defaulted: `has_image_tower` / `has_text_tower` (whether the encode method exists), `embed_dim`
    (the width of one probe embedding), `name` (the class name). One error lists everything missing.
    """
    if isinstance(teacher, OwnTeacher):
        return teacher
    towers = _towers(teacher, encode_methods=True)
    languages = _languages(teacher)
    lacks = []
    fingerprint = getattr(teacher, "fingerprint", None)
    if not isinstance(fingerprint, str) or not fingerprint:
        lacks.append("`fingerprint` (a non-empty str: model id + weights digest + preprocessing version)")
    if not (towers["image"] or towers["text"]):
        lacks.append("`encode_images(images)` or `encode_texts(texts, lang)` (a teacher needs at least one tower)")
    for tower, method in (("image", "encode_images(images)"), ("text", "encode_texts(texts, lang)")):
        if towers[tower] and not _callable(teacher, method.split("(")[0]):
            lacks.append(f"`{method}` (it declares has_{tower}_tower)")
    if towers["text"] and languages is None:
        lacks.append("`languages` (the language codes its text tower serves, e.g. ('en', 'zh'))")
    _refuse("teacher", teacher, where, lacks)
    embed_dim = getattr(teacher, "embed_dim", None)
    name = getattr(teacher, "name", None)
    complete = (
        isinstance(embed_dim, int)
        and embed_dim > 0
        and isinstance(name, str)
        and name
        and all(_declared_tower(teacher, tower) is not None for tower in TOWERS)
        and (languages is not None or not towers["text"])
    )
    if complete:
        return teacher
    if not (isinstance(embed_dim, int) and embed_dim > 0):
        embed_dim = _probe_width(teacher, towers, languages, where)
    return OwnTeacher(
        teacher,
        name=name if isinstance(name, str) and name else type(teacher).__name__,
        embed_dim=int(embed_dim),
        towers=towers,
        languages=languages or (),
    )


def check_student(student, where: str):
    """`student` when it meets what training needs of the Student protocol; else one error listing what it lacks.

    A student is an `nn.Module` with `embed_dim`, `save_pretrained(folder)`, and for each tower it
    has (`has_image_tower` / `has_text_tower`, default: the tower module exists) the tower module
    and its input step: `image_tower` + `preprocess_images(images)`, `text_tower` + `tokenize(texts)`.
    """
    lacks = []
    if not isinstance(student, torch.nn.Module):
        lacks.append("being a torch.nn.Module (the Distiller trains its parameters)")
    embed_dim = getattr(student, "embed_dim", None)
    if isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 1:
        lacks.append("`embed_dim` (a positive int: the width of both towers' outputs)")
    if not _callable(student, "save_pretrained"):
        lacks.append("`save_pretrained(folder)`")
    towers = {
        tower: (
            _declared_tower(student, tower)
            if _declared_tower(student, tower) is not None
            else isinstance(getattr(student, f"{tower}_tower", None), torch.nn.Module)
        )
        for tower in TOWERS
    }
    if not any(towers.values()):
        lacks.append("an `image_tower` or a `text_tower` module")
    for tower, step in (("image", "preprocess_images(images)"), ("text", "tokenize(texts)")):
        if towers[tower]:
            if not isinstance(getattr(student, f"{tower}_tower", None), torch.nn.Module):
                lacks.append(f"`{tower}_tower` (an nn.Module)")
            if not _callable(student, step.split("(")[0]):
                lacks.append(f"`{step}`")
    _refuse("student", student, where, lacks)
    return student


def check_encoder(encoder, where: str):
    """`encoder` when it can be evaluated zero-shot: `encode_images(images)` and `encode_texts(texts, lang)`."""
    lacks = [
        f"`{method}`"
        for method in ("encode_images(images)", "encode_texts(texts, lang)")
        if not _callable(encoder, method.split("(")[0])
    ]
    _refuse("encoder", encoder, where, lacks)
    return encoder
