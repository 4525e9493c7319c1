"""Export targets: ExecuTorch .pte with XNNPACK (fp32, int8) and Core ML .mlpackage (fp16, compressed)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch
from export_fixtures import SmallConvTower

from compress import registry
from compress.bundle.modules import ImageEncoderForExport, TextEncoderForExport
from compress.errors import CompressError
from compress.quant import embedding_cosine
from students.text_encoder import TextEncoder
from targets.coreml_target import COMPRESSED_WEIGHT_OPS, CoreMLTarget, inspect_mlpackage
from targets.executorch_target import DelegationSummary, ExecuTorchTarget, PteModule

MEAN, STD = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)


def image_model(size: int = 32) -> torch.nn.Module:
    torch.manual_seed(0)
    return ImageEncoderForExport(SmallConvTower(16, image_size=size), MEAN, STD).eval()


def text_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return TextEncoderForExport(TextEncoder(500, 32, layers=1, hidden=64, heads=2, ffn=128, max_length=16)).eval()


def token_ids() -> torch.Tensor:
    ids = torch.zeros(1, 16, dtype=torch.long)
    ids[0, :7] = torch.tensor([2, 40, 41, 99, 120, 7, 3])
    return ids


def test_targets_are_registered_entry_points():
    assert registry.get("targets", "executorch") is ExecuTorchTarget
    assert registry.get("targets", "coreml") is CoreMLTarget
    assert ExecuTorchTarget.suffix == ".pte" and CoreMLTarget.suffix == ".mlpackage"


def test_executorch_fp32_image_model(tmp_path):
    """int8 .pte files (static image, dynamic text) are exported and checked in test_bundle's shared bundle."""
    model = image_model()
    pixels = torch.rand(4, 3, 32, 32)
    target = ExecuTorchTarget()
    path = target.export(model, pixels[:1], tmp_path / "image.pte")  # the Target protocol entry
    assert path == tmp_path / "image.pte"
    result = target.last_export
    assert result.precision == "fp32" and result.bytes == path.stat().st_size
    assert result.delegation.subgraphs >= 1 and result.delegation.fraction > 0.5
    assert result.delegation.heavy_ops_outside == [] and result.delegation.missing_kernels == []
    runtime = PteModule(path)
    eager = torch.cat([model(x) for x in pixels.split(1)])
    output = torch.cat([runtime(x) for x in pixels.split(1)])
    assert (output - eager).abs().max() <= 1e-4
    assert torch.allclose(output.norm(dim=-1), torch.ones(4), atol=1e-5)  # the wrapper normalises
    with pytest.raises(CompressError, match=r"image.pte: ExecuTorch failed to run it on a \[1, 3, 16, 16\]"):
        runtime(torch.rand(1, 3, 16, 16))


def test_a_program_xnnpack_cannot_take_is_refused(tmp_path):
    lookup = torch.nn.Embedding(50, 8).eval()  # a gather: no XNNPACK kernel
    with pytest.raises(CompressError, match="XNNPACK delegated nothing"):
        ExecuTorchTarget().export(lookup, torch.zeros(1, 4, dtype=torch.long), tmp_path / "lookup.pte")
    assert not (tmp_path / "lookup.pte").exists()
    with pytest.raises(CompressError, match="unknown quantization"):
        ExecuTorchTarget().export(lookup, torch.zeros(1, 4, dtype=torch.long), tmp_path / "x.pte", quantize="int4")


def test_heavy_operators_left_outside_warn_or_refuse(caplog):
    summary = DelegationSummary(
        subgraphs=2,
        delegated_nodes=6,
        non_delegated_nodes=2,
        non_delegated_ops={"aten_convolution_default": 1},
        heavy_ops_outside=["aten_convolution_default"],
    )
    with caplog.at_level(logging.WARNING):
        ExecuTorchTarget()._check(summary)
    assert "aten_convolution_default" in caplog.text and "75% of operators delegated" in caplog.text
    with pytest.raises(CompressError, match="compute-heavy operators"):
        ExecuTorchTarget(strict=True)._check(summary)
    missing = DelegationSummary(subgraphs=1, delegated_nodes=1, non_delegated_nodes=1, missing_kernels=["aten::cumsum"])
    with pytest.raises(CompressError, match="no kernel"):
        ExecuTorchTarget()._check(missing)


def test_pte_module_errors_name_the_file(tmp_path):
    with pytest.raises(CompressError, match="no such .pte"):
        PteModule(tmp_path / "absent.pte")
    broken = tmp_path / "broken.pte"
    broken.write_bytes(b"not a program")
    with pytest.raises(CompressError, match="broken.pte: cannot load"):
        PteModule(broken)


@pytest.fixture(scope="module")
def converted_text():
    return CoreMLTarget().convert(text_model(), token_ids().to(torch.int32), input_kind="tensor", input_name="input_ids")


@pytest.mark.parametrize("mode", ["fp16", "int8", "palette6", "palette4"])
def test_coreml_text_model_spec_per_compression(converted_text, mode, tmp_path):
    target = CoreMLTarget()
    path = target.save(target.compress(converted_text, mode), tmp_path / f"text.{mode}.mlpackage")
    info = inspect_mlpackage(path)
    assert info["model_type"] == "mlProgram"
    assert info["specification_version"] >= 8  # iOS 17
    assert info["inputs"] == [{"name": "input_ids", "kind": "tensor", "shape": [1, 16], "dtype": "int32"}]
    assert info["outputs"] == [{"name": "embedding", "kind": "tensor", "shape": [1, 32], "dtype": "float32"}]
    compressed = {"constexpr_affine_dequantize", "constexpr_lut_to_dense"} & set(info["ops"])
    if mode == "fp16":
        assert compressed == set()
    else:
        assert compressed == {COMPRESSED_WEIGHT_OPS[mode]}
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    fp16_weights = 2 * sum(p.numel() for p in text_model().parameters())
    if mode == "int8":
        assert weights.stat().st_size < 0.7 * fp16_weights
    if mode == "palette4":
        assert weights.stat().st_size < 0.45 * fp16_weights


def test_coreml_image_model_takes_an_image(tmp_path):
    path = CoreMLTarget().export(
        image_model(64),
        torch.rand(1, 3, 64, 64),
        tmp_path / "image.mlpackage",
        input_kind="image",
        input_name="image",
        compression="int8",
    )
    info = inspect_mlpackage(path)
    assert info["inputs"] == [{"name": "image", "kind": "image", "shape": [1, 3, 64, 64]}]
    assert info["outputs"][0]["shape"] == [1, 16]
    assert "constexpr_affine_dequantize" in info["ops"]  # the 16x32x3x3 convolution (smaller weights stay fp16)
    assert not (tmp_path / ".image.tmp.mlpackage").exists()


def test_coreml_refuses_bad_options(converted_text, tmp_path):
    target = CoreMLTarget()
    with pytest.raises(CompressError, match="unknown Core ML compression"):
        target.compress(converted_text, "int3")
    with pytest.raises(CompressError, match="ends in .mlpackage"):
        target.save(converted_text, tmp_path / "text.pte")
    with pytest.raises(CompressError, match="unknown Core ML input kind"):
        target.convert(text_model(), token_ids(), input_kind="audio")
    with pytest.raises(CompressError, match="must be \\[1, 3, H, W\\]"):
        target.convert(image_model(), torch.rand(2, 3, 32, 32), input_kind="image")
    with pytest.raises(CompressError, match="not a Core ML package"):
        inspect_mlpackage(tmp_path)


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML prediction needs macOS")
def test_coreml_predictions_match_pytorch(converted_text):
    ids = token_ids()
    predicted = converted_text.predict({"input_ids": ids.numpy().astype(np.int32)})["embedding"]
    assert embedding_cosine(text_model()(ids), torch.from_numpy(np.asarray(predicted, dtype=np.float32))) > 0.999


# The Target protocol, as the bundle drives every target.


def test_first_party_targets_meet_the_target_protocol():
    from compress.bundle.plugins import load_target
    from compress.protocols import Target

    for name in ("executorch", "coreml"):
        assert isinstance(load_target(name), Target)
    assert load_target("executorch").precisions("none") == ["fp32"]
    assert load_target("executorch").precisions("int8") == ["fp32", "int8"]
    assert load_target("coreml").precisions("int8") == ["fp16", "int8-weights"]
    assert load_target("coreml").precisions("none", ["palette4", "fp16"]) == ["palette4", "fp16"]
    with pytest.raises(CompressError, match="unknown Core ML variant\\(s\\) fp8; variants: fp16, int8-weights"):
        load_target("coreml").precisions("none", ["fp8"])
    with pytest.raises(CompressError, match="unknown ExecuTorch precision\\(s\\) int4"):
        load_target("executorch").precisions("none", ["int4"])
    with pytest.raises(CompressError, match="unknown target plugin 'tflite'; available: coreml, executorch"):
        load_target("tflite")


def test_executorch_export_tower_writes_an_entry_and_loads_a_runner(tmp_path):
    from compress.protocols import TowerExport

    target = ExecuTorchTarget()
    ids = token_ids()
    model = text_model()
    calibration = (ids, torch.roll(ids, 1, dims=1))
    entries = []
    for precision in ("fp32", "int8"):
        job = TowerExport(
            tower="text",
            module=model,
            example=ids,
            precision=precision,
            embed_dim=32,
            calibration=calibration if target.needs_calibration(precision) else (),
        )
        entries += target.export_tower(job, tmp_path)
    assert [e["file"] for e in entries] == ["text_encoder.pte", "text_encoder.int8.pte"]
    fp32, int8 = entries
    assert fp32["input"] == {"name": "input_ids", "kind": "tensor", "shape": [1, 16], "dtype": "int64"}
    assert fp32["output"] == {"name": "embedding", "shape": [1, 32]} and fp32["delegation"]["subgraphs"] >= 1
    assert int8["delegation"]["scheme"] == "dynamic"  # the text tower's default int8 scheme
    eager = model(ids)
    assert (target.load(tmp_path / fp32["file"])(ids) - eager).abs().max() <= 1e-4
    assert embedding_cosine(eager, target.load(tmp_path / int8["file"])(ids)) > 0.99


def test_coreml_export_tower_converts_once_for_every_variant(tmp_path, monkeypatch):
    from compress.protocols import TowerExport

    target = CoreMLTarget()
    conversions = []
    convert = target.convert
    monkeypatch.setattr(target, "convert", lambda *a, **k: conversions.append(k) or convert(*a, **k))
    model, pixels = image_model(32), torch.rand(1, 3, 32, 32)
    entries = [
        e
        for precision in ("fp16", "palette6")
        for e in target.export_tower(
            TowerExport(tower="image", module=model, example=pixels, precision=precision, embed_dim=16), tmp_path
        )
    ]
    assert len(conversions) == 1 and conversions[0]["input_kind"] == "image"
    assert [e["file"] for e in entries] == ["image_encoder.mlpackage", "image_encoder.palette6.mlpackage"]
    assert entries[0]["input"] == {"name": "image", "kind": "image", "shape": [1, 3, 32, 32], "dtype": "image"}
    assert inspect_mlpackage(tmp_path / entries[1]["file"])["inputs"][0]["kind"] == "image"
    runner = target.load(tmp_path / entries[0]["file"])
    if sys.platform != "darwin":
        assert runner is None  # Core ML predicts only on macOS
    else:
        assert embedding_cosine(model(pixels), runner(pixels)) > 0.99
