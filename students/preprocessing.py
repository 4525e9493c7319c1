"""How a student turns PIL images into its pixel tensor; the same rule a phone app must apply."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from PIL import Image
from torchvision.transforms import v2 as transforms

from compress.errors import CompressError

RESIZE_RULES = ("shorter_side_center_crop", "squash")


@dataclass(frozen=True)
class ImagePreprocessing:
    """RGB, resize, [0, 1] scaling, then per-channel (x - mean) / std.

    "shorter_side_center_crop" (the default, CLIP's rule) scales the shorter side to `image_size`
    and crops the centre square, keeping the aspect ratio; "squash" resizes straight to a square,
    keeping the whole picture but distorting it. Resizing is bilinear with antialiasing, which
    Android's and iOS's image APIs reproduce.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "shorter_side_center_crop"
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.resize not in RESIZE_RULES:
            raise CompressError(f"image resize rule must be one of {', '.join(RESIZE_RULES)}, not {self.resize!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise CompressError(f"image mean and std need 3 values each, got {list(self.mean)} and {list(self.std)}")
        if any(s <= 0 for s in self.std):
            raise CompressError(f"image std values must be positive, got {list(self.std)}")

    def as_dict(self) -> dict:
        """Plain JSON-able description, for manifests."""
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    def _transform(self) -> transforms.Compose:
        size = self.image_size
        resize = (
            [transforms.Resize(size, antialias=True), transforms.CenterCrop(size)]
            if self.resize == "shorter_side_center_crop"
            else [transforms.Resize((size, size), antialias=True)]
        )
        return transforms.Compose(
            [
                transforms.PILToTensor(),
                *resize,
                transforms.ToDtype(torch.float32, scale=True),
                transforms.Normalize(list(self.mean), list(self.std)),
            ]
        )

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        """`[N, 3, image_size, image_size]` float32."""
        if isinstance(images, Image.Image):
            raise CompressError("preprocess_images takes a list of images, not a single image")
        transform = self._transform()
        if not images:
            return torch.empty(0, 3, self.image_size, self.image_size)
        return torch.stack([transform(image.convert("RGB")) for image in images])
