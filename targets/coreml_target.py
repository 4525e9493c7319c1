"""Core ML target: a tower as an ML Program `.mlpackage` (iOS 17+), fp16 or weight-compressed.

    target = CoreMLTarget()
    model = target.convert(image_wrapper, pixels, input_kind="image")   # fp16 ML Program
    target.save(target.compress(model, "int8"), "image_encoder.int8.mlpackage")

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

import contextlib
import io
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from compress.errors import CompressError

log = logging.getLogger(__name__)

COMPRESSIONS = ("fp16", "int8", "palette6", "palette4")
INPUT_KINDS = ("image", "tensor")
# MIL ops that hold compressed weights, per compression mode.
COMPRESSED_WEIGHT_OPS = {"int8": "constexpr_affine_dequantize", "palette6": "constexpr_lut_to_dense", "palette4": "constexpr_lut_to_dense"}
DEPLOYMENT_TARGET = "iOS17"


def _coremltools():
    with contextlib.redirect_stderr(io.StringIO()):  # it reports missing macOS-only libraries on import
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
            inputs = [ct.ImageType(name=input_name, shape=shape, scale=1.0 / 255.0, bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB)]
        elif example.dtype in (torch.int64, torch.int32):
            inputs = [ct.TensorType(name=input_name, shape=shape, dtype=np.int32)]
        else:
            inputs = [ct.TensorType(name=input_name, shape=shape, dtype=np.float32)]
        module = module.eval()
        with torch.no_grad():
            program = drop_alias_nodes(torch.export.export(module, (example,)).run_decompositions({}))
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stderr(buffer):  # coremltools' own progress bars
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
        with contextlib.redirect_stderr(io.StringIO()):
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
        """The `compress.protocols.Target` entry: options are `input_kind`, `input_name`,
        `output_name` and `compression` (default "fp16")."""
        compression = options.pop("compression", "fp16")
        unknown = set(options) - {"input_kind", "input_name", "output_name"}
        if unknown:
            raise CompressError(f"unknown Core ML export options: {', '.join(sorted(unknown))}")
        return self.save(self.compress(self.convert(module, example, **options), compression), path)


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
