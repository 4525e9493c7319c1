"""ExecuTorch target: a tower as a `.pte` program with the XNNPACK delegate, fp32 or int8.

    target = ExecuTorchTarget()
    result = target.export_program(module, example, "image_encoder.pte", quantize="static", calibration=pixels)
    result.delegation.fraction      # share of the graph's operators that XNNPACK runs

The bundle drives it through the `compress.protocols.Target` protocol (`precisions`,
`export_tower`, `load`), as it drives any registered target.

The path is `torch.export.export` at the example's static shape, `to_edge_transform_and_lower`
with `XnnpackPartitioner`, then `to_executorch()`. int8 goes through PT2E with
`XNNPACKQuantizer` first (`compress.quant.quantize_for_xnnpack`). After lowering, the program is
inspected: a program with no XNNPACK delegate at all is refused, and compute-heavy operators
(convolutions, linears, matmuls) left to the portable kernels are reported by name, as a warning
or, with `strict=True`, an error. Lighter operators XNNPACK does not take (layer and group norm,
embedding lookup, masks) stay on ExecuTorch's portable kernels; the report counts them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from compress.errors import CompressError
from compress.protocols import TowerExport
from compress.quiet import native_stderr

log = logging.getLogger(__name__)

HEAVY_OPS = ("convolution", "linear", "addmm", "mm", "bmm", "matmul")
# Bookkeeping nodes that are neither delegated nor real work.
IGNORED_OPS = ("getitem",)
BACKEND = "xnnpack"  # the name a module's `export_forms(backend)` hook is asked for
PRECISIONS = {None: "fp32", "none": "fp32", "static": "int8-static", "dynamic": "int8-dynamic"}
BUNDLE_PRECISIONS = ("fp32", "int8")  # a bundle's int8 is static for images, dynamic for text (compress.quant.pt2e)


@dataclass
class DelegationSummary:
    """How much of a lowered program XNNPACK runs."""

    subgraphs: int
    delegated_nodes: int
    non_delegated_nodes: int
    non_delegated_ops: dict[str, int] = field(default_factory=dict)
    heavy_ops_outside: list[str] = field(default_factory=list)
    missing_kernels: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        total = self.delegated_nodes + self.non_delegated_nodes
        return self.delegated_nodes / total if total else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "fraction": round(self.fraction, 4)}


@dataclass
class PteExport:
    """A written `.pte` and what is known about it."""

    path: Path
    bytes: int
    precision: str
    delegation: DelegationSummary

    def to_dict(self) -> dict:
        return {"path": str(self.path), "bytes": self.bytes, "precision": self.precision, "delegation": self.delegation.to_dict()}


def _op_name(operator: str) -> str:
    """'aten_convolution_default' -> 'convolution'; 'getitem' stays 'getitem'."""
    name = operator
    for prefix in ("aten_", "dim_order_ops_", "quantized_decomposed_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    for suffix in ("_default", "_tensor", "_scalar", "_self", "_dims", "_dim_int_list", "_int", "_dim"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _registered_kernels() -> set[str]:
    from executorch.runtime import Runtime

    return {name.split(".")[0] for name in Runtime.get().operator_registry.operator_names}


def _kernel_name(target) -> str | None:
    """'aten::native_layer_norm' for an operator run by a kernel; None for delegate calls and getitem."""
    schema = getattr(target, "_schema", None)
    return schema.name if schema is not None else None


def delegation_summary(graph_module: torch.fx.GraphModule) -> DelegationSummary:
    """Delegated and non-delegated operator counts of a lowered edge program's graph."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    outside: Counter = Counter()
    delegated = 0
    for _, row in info.get_operator_delegation_dataframe().iterrows():
        op = row["op_type"]
        if op == "Total" or op in IGNORED_OPS:
            continue
        delegated += int(row["occurrences_in_delegated_graphs"])
        if int(row["occurrences_in_non_delegated_graphs"]):
            outside[op] += int(row["occurrences_in_non_delegated_graphs"])
    heavy = sorted(op for op in outside if _op_name(op) in HEAVY_OPS)
    kernels = _registered_kernels()
    missing = [
        name
        for node in graph_module.graph.nodes
        if node.op == "call_function" and (name := _kernel_name(node.target)) and name not in kernels
    ]
    return DelegationSummary(
        subgraphs=info.num_delegated_subgraphs,
        delegated_nodes=delegated,
        non_delegated_nodes=sum(outside.values()),
        non_delegated_ops=dict(sorted(outside.items())),
        heavy_ops_outside=heavy,
        missing_kernels=sorted(set(missing)),
    )


def backend_export_forms(module: torch.nn.Module, backend: str) -> ExitStack:
    """Enter every `export_forms(backend)` context the module's classes offer (a duck-typed hook: a block
    that can trace to a graph this backend runs whole, e.g. norms without layer_norm), once per hook."""
    stack = ExitStack()
    hooks = [getattr(type(m), "export_forms", None) for m in module.modules()]
    for hook in dict.fromkeys(h for h in hooks if callable(h)):
        stack.enter_context(hook(backend))
    return stack


class ExecuTorchTarget:
    """ExecuTorch .pte with the XNNPACK delegate, fp32 or int8 (PT2E)."""

    name = "executorch"
    suffix = ".pte"

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.last_export: PteExport | None = None  # what the latest `export` / `export_program` wrote

    def lower(
        self,
        module: torch.nn.Module,
        example: torch.Tensor,
        quantize: str | None = None,
        calibration=None,
    ):
        """(ExecutorchProgramManager, DelegationSummary) for `module` at the example's shape."""
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        if quantize not in PRECISIONS:
            raise CompressError(f"unknown quantization {quantize!r} for ExecuTorch; choose none, static or dynamic")
        module = module.eval()
        with torch.no_grad(), native_stderr(), backend_export_forms(module, BACKEND):
            if PRECISIONS[quantize] != "fp32":
                from compress.quant import quantize_for_xnnpack

                module = quantize_for_xnnpack(module, example, quantize, calibration)
            exported = torch.export.export(module, (example,))
            edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        summary = delegation_summary(edge.exported_program().graph_module)
        self._check(summary)
        return edge.to_executorch(), summary

    def _check(self, summary: DelegationSummary) -> None:
        if summary.subgraphs == 0:
            raise CompressError("XNNPACK delegated nothing: the program would run entirely on portable kernels")
        if summary.missing_kernels:
            raise CompressError(
                "the ExecuTorch runtime has no kernel for operators left outside XNNPACK: " + ", ".join(summary.missing_kernels)
            )
        if summary.heavy_ops_outside:
            message = (
                f"XNNPACK left compute-heavy operators to portable kernels: {', '.join(summary.heavy_ops_outside)} "
                f"({100 * summary.fraction:.0f}% of operators delegated)"
            )
            if self.strict:
                raise CompressError(message)
            log.warning(message)

    def export_program(
        self,
        module: torch.nn.Module,
        example: torch.Tensor,
        path: str | Path,
        quantize: str | None = None,
        calibration=None,
    ) -> PteExport:
        """Lower and write `path`; returns its size, precision and delegation summary."""
        program, summary = self.lower(module, example, quantize=quantize, calibration=calibration)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = program.buffer
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(buffer)
        tmp.replace(path)
        self.last_export = PteExport(path=path, bytes=len(buffer), precision=PRECISIONS[quantize], delegation=summary)
        return self.last_export

    def export(self, module: torch.nn.Module, example: torch.Tensor, path: Path, **options) -> Path:
        """One `.pte` of `module`; options are `quantize` and `calibration`."""
        return self.export_program(module, example, path, **options).path

    # The `compress.protocols.Target` protocol, as the bundle drives it.

    def precisions(self, quantize: str, requested: Sequence[str] | None = None) -> list[str]:
        """fp32, plus int8 (PT2E + XNNPACK) with `quantize="int8"`; or the `requested` ones."""
        if requested:
            unknown = [p for p in requested if p not in BUNDLE_PRECISIONS]
            if unknown:
                raise CompressError(
                    f"unknown ExecuTorch precision(s) {', '.join(unknown)}; precisions: {', '.join(BUNDLE_PRECISIONS)}"
                )
            return list(dict.fromkeys(requested))
        return ["fp32", "int8"] if quantize == "int8" else ["fp32"]

    def needs_calibration(self, precision: str) -> bool:
        return precision == "int8"

    def export_tower(self, job: TowerExport, folder: Path) -> list[dict[str, Any]]:
        """`<tower>_encoder.pte` (fp32) or `<tower>_encoder.int8.pte`, with its delegation summary."""
        if job.precision not in BUNDLE_PRECISIONS:
            raise CompressError(f"unknown ExecuTorch precision {job.precision!r}; precisions: {', '.join(BUNDLE_PRECISIONS)}")
        scheme = None
        if job.precision == "int8":
            from compress.quant.pt2e import DEFAULT_SCHEMES

            scheme = job.scheme or DEFAULT_SCHEMES[job.tower]
        suffix = "" if job.precision == "fp32" else f".{job.precision}"
        result = self.export_program(
            job.module,
            job.example,
            Path(folder) / f"{job.tower}_encoder{suffix}{self.suffix}",
            quantize=scheme,
            calibration=list(job.calibration) or None,
        )
        delegation = result.delegation.to_dict()
        if scheme:
            delegation["scheme"] = scheme
        name, dtype = ("pixels", "float32") if job.tower == "image" else ("input_ids", "int64")
        return [
            {
                "target": self.name,
                "tower": job.tower,
                "precision": job.precision,
                "file": result.path.name,
                "input": {"name": name, "kind": "tensor", "shape": list(job.example.shape), "dtype": dtype},
                "output": job.output_spec(),
                "delegation": delegation,
            }
        ]

    def load(self, path: str | Path) -> PteModule:
        """The written program in this machine's ExecuTorch runtime."""
        return PteModule(path)


class PteModule:
    """A `.pte` loaded in the ExecuTorch runtime; call it with one tensor, get one tensor."""

    def __init__(self, path: str | Path, method: str = "forward"):
        from executorch.runtime import Runtime

        self.path = Path(path)
        if not self.path.is_file():
            raise CompressError(f"{self.path}: no such .pte file")
        try:
            with native_stderr():  # the runtime's first load probes the CPU and logs what it cannot read
                program = Runtime.get().load_program(self.path)
                self._method = program.load_method(method)
        except Exception as exc:  # the runtime raises RuntimeError/ValueError subclasses of its own
            raise CompressError(f"{self.path}: cannot load ExecuTorch method {method!r} ({exc})") from None
        if self._method is None:
            raise CompressError(f"{self.path}: no method {method!r}")

    def __call__(self, value: torch.Tensor) -> torch.Tensor:
        try:
            outputs = self._method.execute([value.contiguous()])
        except RuntimeError as exc:
            raise CompressError(
                f"{self.path}: ExecuTorch failed to run it on a {list(value.shape)} {value.dtype} input ({exc})"
            ) from None
        return outputs[0].clone()  # outputs live in the runtime's arena
