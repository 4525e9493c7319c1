"""Post-training int8 for serving in PyTorch, with torchao.

`quantize_(model, Int8DynamicActivationInt8WeightConfig())` swaps the weight of every `nn.Linear`
for an int8 tensor subclass and quantizes activations per call. torchao's `quantize_` is not
backend-aware: on x86 CPUs without int8 GEMM kernels it can be slower than fp32, so the reports
show measured latency rather than assuming a speed-up. Convolutions are not touched, so on the
MobileViT image tower only the projection (and a v1 backbone's transformer linears) shrink; phone
builds take the PT2E path in `compress.quant.pt2e` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

from compress.quant.measure import QuantRow, encoder_agreement, latency_ms, state_dict_bytes


def _is_linear(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Linear)


def quantize_torchao(module: torch.nn.Module, inplace: bool = False) -> torch.nn.Module:
    """`module` (or a copy of it) with int8 dynamic-activation, int8-weight linear layers."""
    target = module if inplace else copy.deepcopy(module)
    quantize_(target, Int8DynamicActivationInt8WeightConfig(set_inductor_config=False), filter_fn=_is_linear)
    return target.eval()


def quantize_student_torchao(student: torch.nn.Module) -> torch.nn.Module:
    """A copy of a student whose image and text towers are torchao int8; it encodes like the original."""
    quantized = copy.deepcopy(student).eval()
    quantize_torchao(quantized.image_tower, inplace=True)
    quantize_torchao(quantized.text_tower, inplace=True)
    return quantized


@torch.no_grad()
def torchao_report(student, images: Sequence, texts: Sequence[str], lang: str = "en", iterations: int = 10) -> list[QuantRow]:
    """fp32 and torchao int8 rows for both towers: state-dict size, batch-1 latency, cosine to fp32."""
    student.eval()
    quantized = quantize_student_torchao(student)
    agreement = encoder_agreement(student, quantized, images, texts, lang)
    pixels = student.preprocess_images(list(images[:1]))
    ids = student.tokenize(list(texts[:1]))
    rows = []
    for mode, model in (("fp32", student), ("int8 dynamic (torchao)", quantized)):
        fp32 = mode == "fp32"
        rows.append(
            QuantRow(
                mode,
                "image",
                state_dict_bytes(model.image_tower),
                latency_ms(model.image_tower, pixels, warmup=1, iterations=iterations),
                1.0 if fp32 else agreement["image_cosine"],
            )
        )
        rows.append(
            QuantRow(
                mode,
                "text",
                state_dict_bytes(model.text_tower),
                latency_ms(model.text_tower, ids, warmup=1, iterations=iterations),
                1.0 if fp32 else agreement["text_cosine"],
            )
        )
    return rows
