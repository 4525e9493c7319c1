"""Post-training int8 for ExecuTorch's XNNPACK backend, through PT2E.

The tower is captured with `torch.export` at its static example shape, annotated by
`XNNPACKQuantizer`, calibrated (static scheme) and converted; the returned graph module still runs
in PyTorch (so its embeddings can be compared with fp32 before lowering) and is what
`targets.executorch_target` exports and lowers to a `.pte`.

Schemes, both with symmetric per-channel int8 weights:
- "static": activations get fixed int8 ranges from calibration on real inputs (`set_global`:
  convolutions, linears, pooling, adds and multiplies), so XNNPACK runs long int8 chains without
  converting back to float between ops. Right for the convolutional image tower. Measured on a
  random-weight mobilevitv2_050 at 64 px (eager simulation, 16 calibration pictures): mean cosine
  to fp32 0.948; leaving adds and multiplies in fp32 raised it only to 0.964 and made the lowered
  program slower than fp32 (a quantize/dequantize pair around every element-wise op); leaving
  whole transformer blocks in fp32, 0.975. A random network has no margin to absorb activation
  rounding, so the bundle's export report checks cosine and zero-shot top-1 on the real student.
  A dynamic scheme for the image tower lowers, but XNNPACK then fails at run time on its
  convolutions ("Propagating input shapes failed"), so it is not offered for images.
- "dynamic": activation ranges are computed per call (XNNPACK's qd8 kernels), only on
  `nn.Linear` layers. Right for the text tower, whose compute is all linear layers and whose
  additive padding mask (a very large negative number) sits badly in a static range: on a one-layer
  tower the cosine to fp32 was 0.99998 dynamic against 0.9995 static. On this plain-torch tower
  (`students.text_encoder`) dynamic conversion works; the IndexError once seen converting a
  Hugging Face BERT tower does not occur.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

from compress.errors import CompressError

SCHEMES = ("static", "dynamic")
DEFAULT_SCHEMES = {"image": "static", "text": "dynamic"}


def xnnpack_quantizer(scheme: str) -> XNNPACKQuantizer:
    """The XNNPACK quantizer for a scheme: per-channel symmetric int8 weights, static or dynamic activations."""
    if scheme not in SCHEMES:
        raise CompressError(f"unknown int8 scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=scheme == "dynamic")
    if scheme == "dynamic":
        return XNNPACKQuantizer().set_module_type(torch.nn.Linear, config)
    return XNNPACKQuantizer().set_global(config)


def _rows(batches: Iterable[torch.Tensor], example: torch.Tensor):
    """Calibration inputs one example-shaped row at a time (the graph is captured at batch 1)."""
    for batch in batches:
        if tuple(batch.shape[1:]) != tuple(example.shape[1:]):
            raise CompressError(
                f"calibration input of shape {list(batch.shape)} does not match the export shape {list(example.shape)}"
            )
        for row in batch.split(example.shape[0]):
            if row.shape[0] == example.shape[0]:
                yield row.to(example.dtype)


@torch.no_grad()
def quantize_for_xnnpack(
    module: torch.nn.Module,
    example: torch.Tensor,
    scheme: str,
    calibration: Iterable[torch.Tensor] | None = None,
) -> torch.fx.GraphModule:
    """An int8 graph module of `module` at the example's shape, ready to export and lower to XNNPACK.

    `calibration` holds real inputs (preprocessed images, token ids of real captions) shaped like
    `example` apart from the batch dimension; the static scheme needs it, the dynamic one uses it
    only to exercise the graph once. `module` is put in eval mode.
    """
    quantizer = xnnpack_quantizer(scheme)
    rows = list(_rows(calibration or (), example))  # shapes are checked before the slow capture
    if scheme == "static" and not rows:
        raise CompressError("static int8 quantization needs calibration samples (real preprocessed inputs); none given")
    module.eval()
    captured = torch.export.export(module, (example,)).module()
    prepared = prepare_pt2e(captured, quantizer)
    for row in (rows if scheme == "static" else rows[:1]) or [example]:
        prepared(row)
    return convert_pt2e(prepared)
