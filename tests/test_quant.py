"""Quantization: PT2E int8 for XNNPACK, torchao int8, QAT hooks, and the agreement measurements."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from export_fixtures import SmallConvTower, build_tiny_student, train_tiny_tokenizer
from torchao.quantization.qat import FakeQuantizedLinear

from compress.demo_world import open_demo
from compress.errors import CompressError
from compress.quant import (
    QuantRow,
    convert_qat,
    embedding_cosine,
    encoder_agreement,
    fake_quantized_modules,
    prepare_qat,
    print_quant_table,
    quantize_for_xnnpack,
    quantize_student_torchao,
    quantize_torchao,
    state_dict_bytes,
    torchao_report,
)
from students.text_encoder import TextEncoder


def _ops(graph_module) -> set[str]:
    return {str(node.target) for node in graph_module.graph.nodes if node.op == "call_function"}


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return build_tiny_student(train_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="module")
def samples():
    data = open_demo("train", size=8)
    return [data[i] for i in range(len(data))]


@pytest.fixture
def text_tower():
    torch.manual_seed(0)
    return TextEncoder(500, 32, layers=1, hidden=32, heads=2, ffn=64, max_length=16).eval()


def _ids(count: int, length: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 500, (count, length), generator=generator)
    ids[:, 0], ids[:, 10:] = 2, 0  # bos, then padding like real captions
    return ids


def test_static_int8_quantizes_convolutions_with_calibration():
    torch.manual_seed(0)
    tower = SmallConvTower(16, image_size=32).eval()
    calibration = torch.rand(8, 3, 32, 32)
    quantized = quantize_for_xnnpack(tower, calibration[:1], "static", [calibration])
    ops = _ops(quantized)
    assert "quantized_decomposed.dequantize_per_channel.default" in ops  # per-channel int8 weights
    assert "quantized_decomposed.quantize_per_tensor.default" in ops  # calibrated static activations
    held_out = torch.rand(4, 3, 32, 32)
    reference = torch.cat([tower(x) for x in held_out.split(1)])
    output = torch.cat([quantized(x) for x in held_out.split(1)])
    assert embedding_cosine(reference, output) > 0.99
    assert not torch.equal(reference, output)  # it really is quantized


def test_static_int8_needs_calibration_of_the_right_shape():
    tower = SmallConvTower(16, image_size=32).eval()
    with pytest.raises(CompressError, match="needs calibration samples"):
        quantize_for_xnnpack(tower, torch.rand(1, 3, 32, 32), "static", [])
    with pytest.raises(CompressError, match="does not match the export shape"):
        quantize_for_xnnpack(tower, torch.rand(1, 3, 32, 32), "static", [torch.rand(2, 3, 16, 16)])
    with pytest.raises(CompressError, match="unknown int8 scheme"):
        quantize_for_xnnpack(tower, torch.rand(1, 3, 32, 32), "int4")


def test_dynamic_int8_text_tower_quantizes_only_linears(text_tower):
    quantized = quantize_for_xnnpack(text_tower, _ids(1), "dynamic")
    ops = _ops(quantized)
    assert any("choose_qparams" in op for op in ops)  # activation ranges computed at run time
    linears = sum(isinstance(m, torch.nn.Linear) for m in text_tower.modules())
    weights = sum(
        1 for node in quantized.graph.nodes if node.target == torch.ops.quantized_decomposed.dequantize_per_channel.default
    )
    assert weights == linears
    ids = _ids(6, seed=1)
    reference = torch.cat([text_tower(x[None]) for x in ids])
    output = torch.cat([quantized(x[None]) for x in ids])
    assert embedding_cosine(reference, output) > 0.99


def test_torchao_int8_swaps_linear_weights_and_keeps_the_original(text_tower):
    ids = _ids(4)
    before = text_tower(ids)
    quantized = quantize_torchao(text_tower)
    assert type(text_tower.projection.weight) is torch.nn.Parameter  # a copy was quantized
    assert type(quantized.projection.weight).__name__ != "Parameter"
    assert "Int8" in type(quantized.projection.weight).__name__
    assert embedding_cosine(before, quantized(ids)) > 0.99
    assert state_dict_bytes(quantized) < state_dict_bytes(text_tower)


def test_torchao_report_and_encoder_agreement(student, samples):
    images = [s.image for s in samples[:1]]
    texts = [s.caption for s in samples[:4]]
    quantized = quantize_student_torchao(student)
    agreement = encoder_agreement(student, quantized, images, texts, "en")
    assert set(agreement) == {"image_cosine", "text_cosine"}
    assert 0.95 < agreement["text_cosine"] <= 1.0 + 1e-6
    assert encoder_agreement(student, student, texts=texts, lang="zh") == pytest.approx({"text_cosine": 1.0})
    rows = torchao_report(student, images, texts, iterations=1)
    assert [(r.mode, r.tower) for r in rows] == [
        ("fp32", "image"),
        ("fp32", "text"),
        ("int8 dynamic (torchao)", "image"),
        ("int8 dynamic (torchao)", "text"),
    ]
    assert all(r.latency_ms > 0 and r.bytes > 0 for r in rows)
    assert rows[3].bytes < rows[1].bytes  # the text tower's linears shrank
    table = print_quant_table(rows + [QuantRow("fp32", "image", 0, 0.0, 1.0, top1=0.5)])
    assert table.row_count == 5


def test_embedding_cosine_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        embedding_cosine(torch.ones(2, 4), torch.ones(3, 4))
    assert embedding_cosine(torch.ones(2, 4), -torch.ones(2, 4)) == pytest.approx(-1.0)


def test_prepare_qat_inserts_fake_quantization_and_training_steps(student, samples):
    student = build_tiny_student(student.tokenizer.source)  # a fresh copy: QAT changes it in place
    keys = set(student.state_dict())
    linears = {
        f"{tower}.{name}"
        for tower in ("image_tower", "text_tower")
        for name, m in getattr(student, tower).named_modules()
        if type(m) is torch.nn.Linear
    }
    prepare_qat(student)
    names = fake_quantized_modules(student)
    assert set(names) == linears  # every linear of both towers, nothing else
    assert "image_tower.projection" in names and sum(n.startswith("text_tower.") for n in names) >= 5
    assert isinstance(student.text_tower.projection, FakeQuantizedLinear)
    assert set(student.state_dict()) == keys  # checkpoints keep their keys

    student.train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    pixels = student.preprocess_images([s.image for s in samples[:4]])
    ids = student.tokenize([s.caption for s in samples[:4]])
    image = F.normalize(student.image_tower(pixels), dim=-1)
    text = F.normalize(student.text_tower(ids), dim=-1)
    loss = F.cross_entropy(10 * image @ text.T, torch.arange(4))
    loss.backward()
    assert student.text_tower.projection.weight.grad is not None
    assert student.text_tower.projection.weight.grad.abs().sum() > 0
    before = student.text_tower.projection.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, student.text_tower.projection.weight)

    # the fake quantizers really change the forward pass
    student.eval()
    with torch.no_grad():
        fake = student.text_tower(ids)
    with pytest.raises(CompressError, match="already prepared"):
        prepare_qat(student)
    convert_qat(student)
    assert fake_quantized_modules(student) == []
    assert type(student.text_tower.projection) is torch.nn.Linear
    assert set(student.state_dict()) == keys
    with torch.no_grad():
        plain = student.text_tower(ids)
    assert not torch.equal(fake, plain)
    assert embedding_cosine(fake, plain) > 0.99
    with pytest.raises(CompressError, match="not prepared"):
        convert_qat(student)


def test_prepare_qat_refuses_unknown_towers(student):
    with pytest.raises(CompressError, match="unknown tower"):
        prepare_qat(student, towers=("audio_tower",))
