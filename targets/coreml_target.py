"""Core ML target: a tower as an ML Program `.mlpackage` (iOS 17+), fp16 or weight-compressed.

    target = CoreMLTarget()
    model = target.convert(image_wrapper, pixels, input_kind="image")   # fp16 ML Program
    target.save(target.compress(model, "int8"), "image_encoder.int8.mlpackage")

The bundle drives it through the `compress.protocols.Target` protocol (`precisions`,
`export_tower`, `load`): each tower is converted once and every variant compresses that conversion.

Conversion is `torch.export.export(m, x).run_decompositions({})` then `coremltools.convert`
(`convert_to="mlprogram"`, `minimum_deployment_target=iOS17`, fp16 compute). Compression modes
work on the converted weights: "int8" is `linear_quantize_weights` (symmetric, per channel),
"palette6" / "palette4" are `palettize_weights` (k-means lookup tables of 64 / 16 entries).

Image inputs are `ct.ImageType` (RGB, `scale=1/255`, no bias), so an app hands Core ML a
`CVPixelBuffer` of the resized, cropped picture and nothing else. `ImageType` takes one scalar
scale but CLIP-style normalisation divides each channel by its own std, so the (x - mean) / std step
is not put in the ImageType at all: the wrapped model starts from pixels in [0, 1] and normalises
per channel as its first op (see `compress.bundle.modules.ImageEncoderForExport`). Text inputs are
int32 token ids (Core ML has no int64 inputs).

coremltools converts and saves on Linux but predicts only on macOS; `inspect_mlpackage` reads a
saved package's spec without loading it, for checks on any platform.
"""

from __future__ import annotations

import io
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress.errors import CompressError
from compress.protocols import TowerExport
from compress.quiet import native_stderr, redirect_stderr

log = logging.getLogger(__name__)

COMPRESSIONS = ("fp16", "int8", "palette6", "palette4")
INPUT_KINDS = ("image", "tensor")
# MIL ops that hold compressed weights, per compression mode.
COMPRESSED_WEIGHT_OPS = {
    "int8": "constexpr_affine_dequantize",
    "palette6": "constexpr_lut_to_dense",
    "palette4": "constexpr_lut_to_dense",
}
DEPLOYMENT_TARGET = "iOS17"
# A bundle's Core ML variants: (compression, file-name infix).
BUNDLE_VARIANTS = {
    "fp16": ("fp16", ""),
    "int8-weights": ("int8", ".int8"),
    "palette6": ("palette6", ".palette6"),
    "palette4": ("palette4", ".palette4"),
}


def _coremltools():
    with redirect_stderr(io.StringIO()):  # it reports missing macOS-only libraries on import
        import coremltools as ct
    return ct


def drop_alias_nodes(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Replace `aten.alias` (a no-op view, e.g. from slicing a whole tensor) by its input.

    coremltools' torch.export frontend has no converter for it.
    """
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.aten.alias.default:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    program.graph_module.recompile()
    return program


class CoreMLTarget:
    """Core ML .mlpackage (ML Program, iOS 17), fp16 or weight-compressed (int8, 6/4-bit palettes)."""

    name = "coreml"
    suffix = ".mlpackage"
    _conversion = None  # (module, converted model) of the latest `export_tower`, reused by its other variants

    def convert(
        self,
        module: torch.nn.Module,
        example: torch.Tensor,
        input_kind: str = "tensor",
        input_name: str = "input",
        output_name: str = "embedding",
    ):
        """An fp16 ML Program of `module` at the example's shape (a `coremltools.models.MLModel`)."""
        ct = _coremltools()
        if input_kind not in INPUT_KINDS:
            raise CompressError(f"unknown Core ML input kind {input_kind!r}; choose one of {', '.join(INPUT_KINDS)}")
        shape = tuple(example.shape)
        if input_kind == "image":
            if len(shape) != 4 or shape[:2] != (1, 3):
                raise CompressError(f"a Core ML image input must be [1, 3, H, W], got {list(shape)}")
            inputs = [
                ct.ImageType(
                    name=input_name, shape=shape, scale=1.0 / 255.0, bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB
                )
            ]
        elif example.dtype in (torch.int64, torch.int32):
            inputs = [ct.TensorType(name=input_name, shape=shape, dtype=np.int32)]
        else:
            inputs = [ct.TensorType(name=input_name, shape=shape, dtype=np.float32)]
        module = module.eval()
        with torch.no_grad():
            program = drop_alias_nodes(torch.export.export(module, (example,)).run_decompositions({}))
        buffer = io.StringIO()
        try:
            with redirect_stderr(buffer), native_stderr():  # coremltools' own progress bars
                return ct.convert(
                    program,
                    inputs=inputs,
                    outputs=[ct.TensorType(name=output_name, dtype=np.float32)],  # apps read float32
                    convert_to="mlprogram",
                    minimum_deployment_target=ct.target.iOS17,
                    compute_precision=ct.precision.FLOAT16,
                )
        except Exception as exc:
            log.debug("coremltools output:\n%s", buffer.getvalue())
            raise CompressError(f"Core ML conversion failed: {type(exc).__name__}: {exc}") from exc

    def compress(self, model, mode: str):
        """`model` with its weights compressed: "fp16" (as converted), "int8", "palette6" or "palette4"."""
        if mode not in COMPRESSIONS:
            raise CompressError(f"unknown Core ML compression {mode!r}; choose one of {', '.join(COMPRESSIONS)}")
        if mode == "fp16":
            return model
        ct = _coremltools()
        cto = ct.optimize.coreml
        with redirect_stderr(io.StringIO()):
            if mode == "int8":
                config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"))
                return cto.linear_quantize_weights(model, config)
            nbits = 6 if mode == "palette6" else 4
            config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=nbits))
            return cto.palettize_weights(model, config)

    def save(self, model, path: str | Path) -> Path:
        """Write the package atomically (a temporary folder renamed into place)."""
        path = Path(path)
        if path.suffix != self.suffix:
            raise CompressError(f"{path}: a Core ML package path ends in {self.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{self.suffix}")  # coremltools insists on the suffix
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(str(tmp))
        shutil.rmtree(path, ignore_errors=True)
        tmp.replace(path)
        return path

    def export(self, module: torch.nn.Module, example: torch.Tensor, path: Path, **options) -> Path:
        """One package of `module`; options are `input_kind`, `input_name`, `output_name` and
        `compression` (default "fp16")."""
        compression = options.pop("compression", "fp16")
        unknown = set(options) - {"input_kind", "input_name", "output_name"}
        if unknown:
            raise CompressError(f"unknown Core ML export options: {', '.join(sorted(unknown))}")
        return self.save(self.compress(self.convert(module, example, **options), compression), path)

    # The `compress.protocols.Target` protocol, as the bundle drives it.

    def precisions(self, quantize: str, requested: Sequence[str] | None = None) -> list[str]:
        """fp16, plus int8-weights with `quantize="int8"`; or the `requested` variants."""
        if requested:
            unknown = [v for v in requested if v not in BUNDLE_VARIANTS]
            if unknown:
                raise CompressError(f"unknown Core ML variant(s) {', '.join(unknown)}; variants: {', '.join(BUNDLE_VARIANTS)}")
            return list(dict.fromkeys(requested))
        return ["fp16", "int8-weights"] if quantize == "int8" else ["fp16"]

    def needs_calibration(self, precision: str) -> bool:
        return False  # weight compression works on the converted weights alone

    def export_tower(self, job: TowerExport, folder: Path) -> list[dict[str, Any]]:
        """`<tower>_encoder.mlpackage` (fp16) or `<tower>_encoder.<variant>.mlpackage`.

        The tower is converted once and every variant compresses that conversion."""
        if job.precision not in BUNDLE_VARIANTS:
            raise CompressError(f"unknown Core ML variant {job.precision!r}; variants: {', '.join(BUNDLE_VARIANTS)}")
        converted = self._converted(job)
        rel = f"{job.tower}_encoder{BUNDLE_VARIANTS[job.precision][1]}{self.suffix}"
        self.save(self.compress(converted, BUNDLE_VARIANTS[job.precision][0]), Path(folder) / rel)
        if job.tower == "image":
            spec = {"name": "image", "kind": "image", "shape": list(job.example.shape), "dtype": "image"}
        else:
            spec = {"name": "input_ids", "kind": "tensor", "shape": list(job.example.shape), "dtype": "int32"}
        return [
            {
                "target": self.name,
                "tower": job.tower,
                "precision": job.precision,
                "file": rel,
                "input": spec,
                "output": job.output_spec(),
            }
        ]

    def _converted(self, job: TowerExport):
        if self._conversion is not None and self._conversion[0] is job.module:
            return self._conversion[1]
        if job.tower == "image":
            converted = self.convert(job.module, job.example, input_kind="image", input_name="image")
        else:
            converted = self.convert(job.module, job.example.to(torch.int32), input_kind="tensor", input_name="input_ids")
        self._conversion = (job.module, converted)
        return converted

    def load(self, path: str | Path):
        """A runner of the package (canonical input tensor in, `[1, D]` out); None off macOS,
        where Core ML cannot predict."""
        if sys.platform != "darwin":
            return None
        return _CoreMLRunner(Path(path))


class _CoreMLRunner:
    """A package loaded in Core ML: pixels become the RGB picture its ImageType takes, ids int32."""

    def __init__(self, path: Path):
        ct = _coremltools()
        self.path = path
        self.model = ct.models.MLModel(str(path))
        self.input = self.model.get_spec().description.input[0]

    def __call__(self, value: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        if self.input.type.WhichOneof("Type") == "imageType":
            array = (value[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
            feed = {self.input.name: Image.fromarray(array)}
        else:
            feed = {self.input.name: value.numpy().astype(np.int32)}
        return torch.from_numpy(np.asarray(self.model.predict(feed)["embedding"], dtype=np.float32)).reshape(1, -1)


def _feature(description) -> dict:
    kind = description.type.WhichOneof("Type")
    if kind == "imageType":
        image = description.type.imageType
        return {"name": description.name, "kind": "image", "shape": [1, 3, image.height, image.width]}
    array = description.type.multiArrayType
    dtype = {65568: "float32", 65552: "float16", 131104: "int32"}.get(array.dataType, str(array.dataType))
    return {"name": description.name, "kind": "tensor", "shape": list(array.shape), "dtype": dtype}


def inspect_mlpackage(path: str | Path) -> dict:
    """What a saved package declares: inputs, outputs, specification version, MIL op types.

    Reads the spec only (`skip_model_load=True`), so it works where Core ML cannot run.
    """
    ct = _coremltools()
    path = Path(path)
    if not (path / "Manifest.json").is_file():
        raise CompressError(f"{path}: not a Core ML package (no Manifest.json)")
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    ops: set[str] = set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            ops.update(op.type for op in block.operations)
    return {
        "specification_version": spec.specificationVersion,
        "model_type": spec.WhichOneof("Type"),
        "inputs": [_feature(d) for d in spec.description.input],
        "outputs": [_feature(d) for d in spec.description.output],
        "ops": sorted(ops),
    }
