"""Stored image augmentations: the parameters of each view the teacher embedded, replayable exactly.

As in MobileCLIP's reinforced datasets, a teacher cache holds K augmented views per image. The
parameters of view `v` of sample `i` are drawn from a generator seeded by (seed, i, v) with
torchvision's own samplers (`RandomResizedCrop.get_params`, `ColorJitter.get_params`), stored in
the cache, and replayed by `apply_augmentation(image, params)`: the student is trained on the very
pixels the teacher saw.

Presets (`AUGMENTATIONS`):
    none          the image as it is (one view)
    crop-flip     random resized crop (scale 0.35-1, aspect 3/4-4/3, resized back to the image
                  size) and a horizontal flip with probability 0.5
    randaug-lite  crop-flip plus colour jitter (brightness, contrast, saturation 0.3) in random order
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from compress.cache.presets import AUGMENTATIONS
from compress.errors import CompressError

AUGMENTATION_VERSION = 1  # bump when drawing or applying views changes: it is part of every cache index

_JITTER_ADJUST = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


@dataclass(frozen=True)
class Augmentation:
    """What views a cache stores: a preset's settings, the number of views per image and the seed."""

    name: str = "none"
    views: int = 1
    seed: int = 0
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] | None = None
    flip_p: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    version: int = field(default=AUGMENTATION_VERSION)

    @property
    def enabled(self) -> bool:
        return self.name != "none"

    @property
    def jitter(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("crop_scale", "crop_ratio"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Augmentation:
        data = dict(data)
        for key in ("crop_scale", "crop_ratio"):
            if data.get(key) is not None:
                data[key] = tuple(float(x) for x in data[key])
        try:
            return cls(**data)
        except TypeError as exc:
            raise CompressError(f"augmentation settings {data!r} are not understood ({exc})") from None

    def describe(self) -> str:
        return "none" if not self.enabled else f"{self.name} x{self.views} (seed {self.seed})"


def make_augmentation(
    spec: str | dict[str, Any] | Augmentation | None = "none", views: int | None = None, seed: int | None = None
) -> Augmentation:
    """Settings from a preset name, a dict (a preset "name" plus overrides) or an `Augmentation`.

    `views` defaults to 1 for "none" and 4 otherwise; "none" with more than one view is refused
    (the views would all be the same image).
    """
    if isinstance(spec, Augmentation):
        settings = spec
        if views is not None or seed is not None:
            settings = replace(
                settings, views=settings.views if views is None else views, seed=settings.seed if seed is None else seed
            )
        return _checked(settings)
    if spec is None:
        spec = "none"
    overrides: dict[str, Any] = {}
    if isinstance(spec, dict):
        overrides = dict(spec)
        spec = overrides.pop("name", None)
        if spec is None:
            raise CompressError(f"augmentation dict needs a 'name' ({', '.join(AUGMENTATIONS)}): {overrides!r}")
    if spec not in AUGMENTATIONS:
        raise CompressError(f"unknown augmentation {spec!r}; choose one of {', '.join(AUGMENTATIONS)}")
    overrides.pop("version", None)
    views = overrides.pop("views", views)
    seed = overrides.pop("seed", seed)
    unknown = sorted(set(overrides) - {"crop_scale", "crop_ratio", "flip_p", "brightness", "contrast", "saturation"})
    if unknown:
        raise CompressError(f"unknown augmentation option(s) {', '.join(unknown)}")
    if spec == "none" and overrides:
        raise CompressError(f"augmentation 'none' takes no options, got {', '.join(sorted(overrides))}")
    settings = {**AUGMENTATIONS[spec], **overrides}
    views = (1 if spec == "none" else 4) if views is None else views
    return _checked(Augmentation.from_dict({"name": spec, "views": views, "seed": 0 if seed is None else seed, **settings}))


def _checked(settings: Augmentation) -> Augmentation:
    if isinstance(settings.views, bool) or not isinstance(settings.views, int) or settings.views < 1:
        raise CompressError(f"views must be a positive integer, not {settings.views!r}")
    if not settings.enabled and settings.views != 1:
        raise CompressError(
            f"{settings.views} views with augmentation 'none' would all be the same image; "
            "choose an augmentation (crop-flip, randaug-lite) or one view"
        )
    if isinstance(settings.seed, bool) or not isinstance(settings.seed, int):
        raise CompressError(f"augmentation seed must be an integer, not {settings.seed!r}")
    for key in ("crop_scale", "crop_ratio"):
        pair = getattr(settings, key)
        if pair is not None and not (len(pair) == 2 and 0 < pair[0] <= pair[1]):
            raise CompressError(f"augmentation {key} must be two numbers 0 < low <= high, not {pair!r}")
    if settings.crop_scale is not None and settings.crop_scale[1] > 1:
        raise CompressError(f"augmentation crop_scale cannot exceed 1, got {settings.crop_scale!r}")
    if not 0 <= settings.flip_p <= 1:
        raise CompressError(f"augmentation flip_p must be in [0, 1], not {settings.flip_p!r}")
    for key in ("brightness", "contrast", "saturation"):
        if not 0 <= getattr(settings, key) < 1:
            raise CompressError(f"augmentation {key} must be in [0, 1), not {getattr(settings, key)!r}")
    return settings


@dataclass(frozen=True)
class ViewParams:
    """One augmented view: crop box (top, left, height, width) resized to (out_height, out_width),
    a horizontal flip, and colour factors applied in `order` (0 brightness, 1 contrast, 2 saturation, 3 hue)."""

    top: int
    left: int
    height: int
    width: int
    out_height: int
    out_width: int
    flip: bool
    order: tuple[int, int, int, int] = (0, 1, 2, 3)
    factors: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.0)  # identity: no colour change

    def box_row(self) -> list[int]:
        return [self.top, self.left, self.height, self.width, self.out_height, self.out_width]


def view_seed(seed: int, index: int, view: int) -> int:
    """A 63-bit seed for view `view` of sample `index`, unrelated across neighbouring triples."""
    digest = hashlib.sha256(f"compress.cache.view:{seed}:{index}:{view}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def draw_view_params(settings: Augmentation, image_size: tuple[int, int], index: int, view: int) -> ViewParams | None:
    """The parameters of view `view` of sample `index` for an image of `image_size` (width, height).

    None when augmentation is off. The draw uses torchvision's samplers under a private seed, so it
    neither reads nor disturbs the caller's random stream.
    """
    if not settings.enabled:
        return None
    width, height = image_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(view_seed(settings.seed, index, view))
        if settings.crop_scale is not None:
            probe = Image.new("L", (width, height))  # get_params reads only the size
            top, left, crop_h, crop_w = transforms.RandomResizedCrop.get_params(
                probe, list(settings.crop_scale), list(settings.crop_ratio or (1.0, 1.0))
            )
        else:
            top, left, crop_h, crop_w = 0, 0, height, width
        flip = bool(torch.rand(1).item() < settings.flip_p)
        order, factors = (0, 1, 2, 3), (1.0, 1.0, 1.0, 0.0)
        if settings.jitter:
            ranges = [
                _factor_range(settings.brightness),
                _factor_range(settings.contrast),
                _factor_range(settings.saturation),
                None,
            ]
            fn_idx, b, c, s, h = transforms.ColorJitter.get_params(*ranges)
            order = tuple(int(i) for i in fn_idx)
            factors = (_or(b, 1.0), _or(c, 1.0), _or(s, 1.0), _or(h, 0.0))
    return ViewParams(int(top), int(left), int(crop_h), int(crop_w), height, width, flip, order, factors)


def _factor_range(strength: float) -> list[float] | None:
    return [max(0.0, 1 - strength), 1 + strength] if strength else None


def _or(value, default: float) -> float:
    return default if value is None else float(value)


def apply_augmentation(image: Image.Image, params: ViewParams | None) -> Image.Image:
    """The augmented view `params` describes (the image itself for None); used to build and to train."""
    if params is None:
        return image
    view = TF.resized_crop(
        image,
        params.top,
        params.left,
        params.height,
        params.width,
        [params.out_height, params.out_width],
        interpolation=InterpolationMode.BILINEAR,
        antialias=True,
    )
    if params.flip:
        view = TF.hflip(view)
    if params.factors != (1.0, 1.0, 1.0, 0.0):
        for fn_id in params.order:
            factor = params.factors[fn_id]
            if factor != (0.0 if fn_id == 3 else 1.0):
                view = _JITTER_ADJUST[fn_id](view, factor)
    return view


# Storage: a shard keeps the views of its samples as four tensors (rows of skipped samples are zero).


def params_to_tensors(rows: list[list[ViewParams] | None], views: int) -> dict[str, torch.Tensor]:
    """{"aug_box" int32 [n, V, 6], "aug_flip" uint8 [n, V], "aug_order" uint8 [n, V, 4],
    "aug_factors" float32 [n, V, 4]}."""
    n = len(rows)
    box = torch.zeros(n, views, 6, dtype=torch.int32)
    flip = torch.zeros(n, views, dtype=torch.uint8)
    order = torch.zeros(n, views, 4, dtype=torch.uint8)
    factors = torch.zeros(n, views, 4, dtype=torch.float32)
    for i, row in enumerate(rows):
        for v, params in enumerate(row or ()):
            box[i, v] = torch.tensor(params.box_row(), dtype=torch.int32)
            flip[i, v] = int(params.flip)
            order[i, v] = torch.tensor(params.order, dtype=torch.uint8)
            factors[i, v] = torch.tensor(params.factors, dtype=torch.float32)
    return {"aug_box": box, "aug_flip": flip, "aug_order": order, "aug_factors": factors}


def params_from_tensors(tensors: dict[str, torch.Tensor], row: int, view: int) -> ViewParams:
    """The `ViewParams` stored at (row, view) by `params_to_tensors`."""
    top, left, height, width, out_h, out_w = (int(x) for x in tensors["aug_box"][row, view].tolist())
    return ViewParams(
        top,
        left,
        height,
        width,
        out_h,
        out_w,
        flip=bool(tensors["aug_flip"][row, view]),
        order=tuple(int(x) for x in tensors["aug_order"][row, view].tolist()),
        factors=tuple(float(x) for x in tensors["aug_factors"][row, view].tolist()),
    )
