"""Where models run and in what precision: one resolution for the Distiller and for every teacher.

"auto" picks the GPU when torch sees one. Asking for CUDA without a GPU is an error, never a
silent fallback to the CPU.
"""

from __future__ import annotations

import contextlib

import torch

from compress.errors import CompressError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """ "auto" -> cuda when available, else cpu; None -> cpu; anything else as torch reads it."""
    if device is None:
        return torch.device("cpu")
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise CompressError(f"device {device!r} is not a torch device (use 'auto', 'cpu' or 'cuda')") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CompressError(f"device {device!r} was asked for, but torch sees no CUDA GPU")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "fp32" on CPU; mixed precision (bf16 where supported, else fp16) on a GPU."""
    if precision not in PRECISIONS:
        raise CompressError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision in AUTOCAST_DTYPES and device.type != "cuda":
        raise CompressError(f"precision {precision!r} (mixed precision) needs a GPU; on {device.type} use fp32")
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved precision (a no-op for fp32)."""
    if precision in AUTOCAST_DTYPES:
        return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])
    return contextlib.nullcontext()
