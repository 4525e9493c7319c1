"""The student's image tower: a timm MobileViT (v1 or v2) backbone and a linear projection.

The backbone is `timm.create_model(name, pretrained=False, num_classes=0)`, so it pools to one
feature vector; a bias-free Linear maps that to the shared embedding size. Weights start random
or come from a local timm checkpoint (safetensors, or a torch file read with weights_only=True).
Three layout options reshape the timm model through its own config fields (`ByoModelCfg`):
`width` (timm's `width_factor`: every stage's, the stem's and the final convolution's channels),
`stage_strides` (each of the five stages' stride; their product stays 16, so the network still
downsamples by 32) and `act` (the activation of every layer, e.g. "relu").
The backbone's norms and attention blocks export in a form XNNPACK runs whole
(`students.export_blocks`); training and eager inference run timm's own forwards.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import timm
import torch
from timm.models import load_state_dict
from timm.models.mobilevit import model_cfgs
from torch import nn

from compress.errors import CompressError
from students.export_blocks import make_exportable

MOBILEVIT_MODELS = (
    "mobilevit_xxs",
    "mobilevit_xs",
    "mobilevit_s",
    "mobilevitv2_050",
    "mobilevitv2_075",
    "mobilevitv2_100",
    "mobilevitv2_125",
    "mobilevitv2_150",
    "mobilevitv2_175",
    "mobilevitv2_200",
)
# The network downsamples by 32 and its last MobileViT stage cuts the final feature map into 2x2
# patches, so the side must be a multiple of 32 and at least 64 (a 2x2 final map).
RESOLUTION_STEP = 32
MIN_RESOLUTION = 64
STAGES = 5
STAGE_STRIDES_PRODUCT = 16  # with the stem's stride 2: the 32 above
ACTIVATIONS = ("silu", "relu", "gelu", "hard_swish")
LAYOUT_OPTIONS = ("width", "stage_strides", "act")


def check_resolution(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < MIN_RESOLUTION or image_size % RESOLUTION_STEP:
        raise CompressError(
            f"MobileViT image_size must be a multiple of {RESOLUTION_STEP} and at least {MIN_RESOLUTION}, got {image_size!r}"
        )


def check_layout(width: float, stage_strides: list[int] | None, act: str | None) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise CompressError(f"MobileViT width must be a number in (0, 4], got {width!r}")
    if stage_strides is not None:
        valid = (
            isinstance(stage_strides, (list, tuple))
            and len(stage_strides) == STAGES
            and all(s in (1, 2) and not isinstance(s, bool) for s in stage_strides)
        )
        if not valid or math.prod(stage_strides) != STAGE_STRIDES_PRODUCT:
            raise CompressError(
                f"MobileViT stage_strides is a list of {STAGES} strides of 1 or 2 whose product is {STAGE_STRIDES_PRODUCT} "
                f"(the timm models' own: [1, 2, 2, 2, 2]), got {stage_strides!r}"
            )
    if act is not None and act not in ACTIVATIONS:
        raise CompressError(f"MobileViT act must be one of {', '.join(ACTIVATIONS)} or null (the model's own), got {act!r}")


def layout_overrides(model: str, width: float, stage_strides: list[int] | None, act: str | None) -> dict:
    """`timm.create_model` keyword arguments that ByobNet lays over the model's `ByoModelCfg`."""
    check_layout(width, stage_strides, act)
    overrides: dict = {}
    if width != 1:
        overrides["width_factor"] = float(width)
    if act is not None:
        overrides["act_layer"] = act
    if stage_strides is not None:
        blocks = []
        for stage, stride in zip(model_cfgs[model].blocks, stage_strides):
            # a MobileViT stage is (inverted residual, MobileViT block): the first block strides
            blocks.append((replace(stage[0], s=stride), *stage[1:]) if isinstance(stage, tuple) else replace(stage, s=stride))
        overrides["blocks"] = tuple(blocks)
    return overrides


class MobileViTImageTower(nn.Module):
    """Pixels `[N, 3, image_size, image_size]` (normalised) to unnormalised embeddings `[N, embed_dim]`."""

    def __init__(
        self,
        model: str,
        image_size: int,
        embed_dim: int,
        checkpoint: str | Path | None = None,
        drop_path_rate: float = 0.0,
        width: float = 1.0,
        stage_strides: list[int] | None = None,
        act: str | None = None,
    ):
        super().__init__()
        if model not in MOBILEVIT_MODELS:
            raise CompressError(f"unknown MobileViT model {model!r}; choose one of {', '.join(MOBILEVIT_MODELS)}")
        check_resolution(image_size)
        if embed_dim < 1:
            raise CompressError(f"image embed_dim must be positive, got {embed_dim}")
        self.model_name, self.image_size = model, image_size
        layout = layout_overrides(model, width, stage_strides, act)
        backbone = timm.create_model(model, pretrained=False, num_classes=0, drop_path_rate=drop_path_rate, **layout)
        self.backbone = make_exportable(backbone)
        if checkpoint is not None:
            load_backbone_checkpoint(self.backbone, Path(checkpoint))
        self.projection = nn.Linear(self.backbone.num_features, embed_dim, bias=False)

    @property
    def mean(self) -> tuple[float, ...]:
        """The per-channel input mean the backbone's checkpoints were trained with (timm's config)."""
        return tuple(self.backbone.pretrained_cfg["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.backbone.pretrained_cfg["std"])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if tuple(pixels.shape[1:]) != (3, self.image_size, self.image_size):
            raise CompressError(
                f"image tower takes [N, 3, {self.image_size}, {self.image_size}] pixels, got {list(pixels.shape)}"
            )
        return self.projection(self.backbone(pixels))


def load_backbone_checkpoint(backbone: nn.Module, path: Path) -> None:
    """Load a timm checkpoint of the same architecture; its classifier head, if any, is dropped."""
    if not path.is_file():
        raise CompressError(f"{path}: no such image checkpoint")
    try:
        state = load_state_dict(str(path), weights_only=True)  # safetensors by suffix, else torch.load
    except Exception as exc:  # a corrupt file or a pickle that weights_only refuses
        raise CompressError(f"{path}: cannot read image checkpoint ({type(exc).__name__}: {exc})") from None
    head = backbone.pretrained_cfg.get("classifier", "head.fc")
    state = {key: value for key, value in state.items() if not key.startswith(f"{head}.")}
    architecture = backbone.pretrained_cfg.get("architecture", "MobileViT")
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of the wrong shape: another width of the family
        reason = str(exc).strip().splitlines()[-1].strip()
        raise CompressError(f"{path}: not a {architecture} checkpoint ({reason})") from None
    if result.missing_keys or result.unexpected_keys:
        missing = ", ".join(result.missing_keys[:3]) or "none"
        unexpected = ", ".join(result.unexpected_keys[:3]) or "none"
        raise CompressError(
            f"{path}: not a {architecture} checkpoint "
            f"({len(result.missing_keys)} missing keys, e.g. {missing}; "
            f"{len(result.unexpected_keys)} unexpected, e.g. {unexpected})"
        )
