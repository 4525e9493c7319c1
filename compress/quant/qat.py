"""Quantization-aware training hooks for stage 2 (alignment): `prepare_qat` and `convert_qat`.

Choice: torchao QAT (`quantize_(m, QATConfig(base, step="prepare"))`, then `step="convert"`),
not PT2E QAT. torchao swaps each `nn.Linear` for a `FakeQuantizedLinear` that keeps the same
parameters under the same names, so the student stays the same class with the same methods and
the same state-dict keys: the trainer's optimiser, AMP, DDP, safetensors checkpoints and resume
work unchanged, and `train()` / `eval()` mean what they always mean. PT2E QAT would replace each
tower by a graph captured at one input shape, with its own train/eval switch and renamed state,
which every part of training would have to learn about.

The fake quantization mirrors what the phone runs: int8 symmetric per-channel weights and int8
asymmetric per-token activations quantized at run time (the base config
`Int8DynamicActivationIntxWeightConfig(weight_dtype=int8, weight_granularity=PerAxis(0))`), which
is XNNPACK's dynamic-quantized linear. That covers every matmul of the text tower, the image
tower's projection and a MobileViT v1 backbone's transformer linears; convolutions (all of a
MobileViT v2 backbone) have no torchao QAT support and get int8 from static post-training
calibration at export.

`convert_qat` removes the fake quantizers and leaves an fp32 student whose weights were trained
under int8 noise; `export` then quantizes it with the same int8 scheme (PT2E for ExecuTorch) and
`compress.quant.quantize_torchao` serves it in PyTorch.
"""

from __future__ import annotations

import torch
from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
from torchao.quantization.granularity import PerAxis
from torchao.quantization.qat import FakeQuantizedLinear, QATConfig

from compress.errors import CompressError

TOWERS = ("image_tower", "text_tower")


def qat_base_config() -> Int8DynamicActivationIntxWeightConfig:
    """int8 per-channel symmetric weights, int8 per-token asymmetric dynamic activations."""
    return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))


def _is_linear(module: torch.nn.Module, fqn: str) -> bool:
    return type(module) is torch.nn.Linear


def _towers(student: torch.nn.Module, towers: tuple[str, ...]) -> list[torch.nn.Module]:
    found = []
    for name in towers:
        if name not in TOWERS:
            raise CompressError(f"unknown tower {name!r} for QAT; towers: {', '.join(TOWERS)}")
        tower = getattr(student, name, None)
        if tower is None:
            raise CompressError(f"{type(student).__name__} has no {name} to prepare for QAT")
        found.append(tower)
    return found


def fake_quantized_modules(module: torch.nn.Module) -> list[str]:
    """Names of the fake-quantized linear layers inside `module`."""
    return [name for name, child in module.named_modules() if isinstance(child, FakeQuantizedLinear)]


def prepare_qat(student: torch.nn.Module, towers: tuple[str, ...] = TOWERS) -> torch.nn.Module:
    """Insert int8 fake quantization into every linear layer of the towers, in place; returns the student.

    Call it after building the optimiser or before: parameters stay the same objects. Training then
    proceeds as usual; gradients flow through the fake quantizers (straight-through estimator).
    """
    if fake_quantized_modules(student):
        raise CompressError(f"{type(student).__name__} is already prepared for QAT")
    for tower in _towers(student, towers):
        quantize_(tower, QATConfig(qat_base_config(), step="prepare"), filter_fn=_is_linear)
    if not fake_quantized_modules(student):
        raise CompressError(f"{type(student).__name__} has no linear layers to prepare for QAT in {', '.join(towers)}")
    return student


def convert_qat(student: torch.nn.Module) -> torch.nn.Module:
    """Remove the fake quantizers in place, leaving plain `nn.Linear`s with the QAT-trained weights."""
    if not fake_quantized_modules(student):
        raise CompressError(f"{type(student).__name__} was not prepared for QAT (no fake-quantized layers)")
    quantize_(student, QATConfig(step="convert"), filter_fn=lambda module, fqn: isinstance(module, FakeQuantizedLinear))
    return student
