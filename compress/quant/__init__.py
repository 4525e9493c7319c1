"""Quantization: int8 for ExecuTorch (PT2E + XNNPACK), int8 for PyTorch (torchao), and QAT hooks.

    from compress.quant import quantize_for_xnnpack, quantize_torchao, prepare_qat, convert_qat

- `quantize_for_xnnpack(tower, example, scheme, calibration)`: post-training int8 through PT2E
  with `XNNPACKQuantizer`; the result is exported and lowered by `targets.executorch_target`.
  "static" (per-channel weights, calibrated activations) suits the convolutional image tower;
  "dynamic" (per-channel weights, activations quantized at run time) suits the text tower, whose
  compute is all `nn.Linear`.
- `quantize_torchao(module)`: int8 dynamic activations + int8 weights on every `nn.Linear`, for
  serving in PyTorch.
- `prepare_qat(student)` / `convert_qat(student)`: fake quantization during stage-2 alignment.
- `encoder_agreement`, `embedding_cosine`, `latency_ms`, `state_dict_bytes`: the measurements every
  quantization report is made of.
"""

from compress.lazy import lazy_exports

# Imported on first use: the PT2E and torchao modules pull in executorch and torchao.
_EXPORTS = {
    "QuantRow": "measure",
    "embedding_cosine": "measure",
    "encoder_agreement": "measure",
    "latency_ms": "measure",
    "print_quant_table": "measure",
    "state_dict_bytes": "measure",
    "DEFAULT_SCHEMES": "pt2e",
    "SCHEMES": "pt2e",
    "quantize_for_xnnpack": "pt2e",
    "convert_qat": "qat",
    "fake_quantized_modules": "qat",
    "prepare_qat": "qat",
    "quantize_student_torchao": "torchao_ptq",
    "quantize_torchao": "torchao_ptq",
    "torchao_report": "torchao_ptq",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
