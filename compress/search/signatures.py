"""Operator signatures of an exported program: the keys of a per-operator latency table.

A signature is the ATen operator of one node of `torch.export.export(module, (example,))` with its
arguments: tensors as dtype and shape, everything else (strides, padding, dims, flags) as written.

    aten.conv2d.default(f32[1,3,64,64], f32[16,3,3,3], None, [2, 2], [1, 1], [1, 1], 1)
    aten.linear.default(f32[1,32,256], f32[512,256], f32[512])

The graph is the one `torch.export` produces before any backend decomposition, so the operators
are the model's own (conv2d, linear, layer_norm, softmax, ...), which is the granularity a phone
micro-benchmark measures.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any

import torch

# Nodes that only unpack tuples: no work, no signature (nor export's `aten._assert_*` checks).
BOOKKEEPING_TARGETS = (operator.getitem,)
DTYPE_NAMES = {
    torch.float32: "f32",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.float64: "f64",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.int16: "i16",
    torch.int8: "i8",
    torch.uint8: "u8",
    torch.bool: "b8",
}


def export_program(module: torch.nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    with torch.no_grad():
        return torch.export.export(module.eval(), (example,))


def op_signatures(program: torch.export.ExportedProgram) -> Counter:
    """How often each operator signature occurs in the program's graph."""
    counts: Counter = Counter()
    for node in program.graph.nodes:
        if node.op != "call_function" or _is_bookkeeping(node.target):
            continue
        counts[node_signature(node)] += 1
    return counts


def _is_bookkeeping(target: Any) -> bool:
    """Tuple unpacking and export's shape/metadata assertions: removed before anything runs."""
    if target in BOOKKEEPING_TARGETS:
        return True
    return isinstance(target, torch._ops.OpOverload) and target._schema.name.startswith("aten::_assert_")


def node_signature(node: torch.fx.Node) -> str:
    arguments = [_describe(arg) for arg in node.args]
    arguments += [f"{name}={_describe(value)}" for name, value in sorted(node.kwargs.items())]
    return f"{_target_name(node.target)}({', '.join(arguments)})"


def _target_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return str(target)  # "aten.conv2d.default"
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__name__', repr(target))}".lstrip(".")


def _describe(value: Any) -> str:
    if isinstance(value, torch.fx.Node):
        meta = value.meta.get("val")
        if isinstance(meta, torch.Tensor):
            return _tensor(meta)
        if isinstance(meta, (list, tuple)) and all(isinstance(m, torch.Tensor) for m in meta):
            return "(" + ", ".join(_tensor(m) for m in meta) + ")"
        return repr(meta) if meta is not None else value.name
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, torch.dtype):
        return DTYPE_NAMES.get(value, str(value).removeprefix("torch."))
    if isinstance(value, float):
        return repr(round(value, 6))
    return repr(value)


def _tensor(tensor: torch.Tensor) -> str:
    dtype = DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype).removeprefix("torch."))
    return f"{dtype}[{','.join(str(int(d)) for d in tensor.shape)}]"
