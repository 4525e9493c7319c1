"""The student's blocks in their export form: the same numbers as timm's and torch's own forwards, and
a lowered program that XNNPACK runs (almost) whole, in fp32 and int8."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import GroupNorm1
from timm.layers.attention import Attention
from timm.models.mobilevit import LinearSelfAttention, LinearTransformerBlock, TransformerBlock

from students.export_blocks import (
    ExportableAttention,
    ExportableLayerNorm,
    attention_export_form,
    export_forms,
    group_norm_one_group,
    layer_norm_last_dim,
    linear_attention_export_form,
    make_exportable,
    native_export_blocks,
)
from students.mobilevit import MobileViTImageTower
from students.text_encoder import TextEncoder
from targets.executorch_target import ExecuTorchTarget

# The safe softmax that F.scaled_dot_product_attention decomposes into, and the norms.
MASKING_OPS = ("aten_any_dim", "aten_eq_scalar", "aten_where_self", "aten_logical_not_default", "aten_full_like_default")
NORM_OPS = ("aten_native_layer_norm_default", "aten_native_group_norm_default")


def _random_affine(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        module.weight.normal_(1.0, 0.5)
        module.bias.normal_(0.0, 0.5)
    return module


def test_layer_norm_export_form_matches_f_layer_norm():
    torch.manual_seed(0)
    for shape in ((3, 7, 48), (2, 5, 4, 16)):
        x = torch.randn(shape) * 3.0 + 1.5
        weight, bias = torch.randn(shape[-1]), torch.randn(shape[-1])
        expected = F.layer_norm(x, shape[-1:], weight, bias, 1e-5)
        torch.testing.assert_close(layer_norm_last_dim(x, weight, bias, 1e-5), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(
            layer_norm_last_dim(x, None, None, 1e-6), F.layer_norm(x, shape[-1:], eps=1e-6), atol=1e-5, rtol=0
        )


def test_group_norm_export_form_matches_timm_group_norm1():
    torch.manual_seed(0)
    norm = _random_affine(GroupNorm1(24))
    x = torch.randn(2, 24, 4, 16) * 2.0 - 0.5
    torch.testing.assert_close(group_norm_one_group(x, norm.weight, norm.bias, norm.eps), norm(x), atol=1e-5, rtol=0)


def test_attention_export_form_matches_timm_fused_attention():
    torch.manual_seed(0)
    attention = Attention(64, num_heads=4, qkv_bias=True).eval()
    attention.fused_attn = True  # F.scaled_dot_product_attention, as timm runs it by default
    x = torch.randn(4, 16, 64)
    with torch.no_grad():
        torch.testing.assert_close(attention_export_form(attention, x), attention(x), atol=1e-5, rtol=0)


def test_linear_attention_export_form_matches_timm():
    torch.manual_seed(0)
    attention = LinearSelfAttention(32).eval()
    x = torch.randn(2, 32, 4, 16)
    with torch.no_grad():
        torch.testing.assert_close(linear_attention_export_form(attention, x), attention(x), atol=1e-5, rtol=0)


def test_make_exportable_keeps_state_dict_and_eager_outputs():
    torch.manual_seed(0)
    plain = timm.create_model("mobilevit_xxs", pretrained=False, num_classes=0).eval()
    keys = list(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = plain(x)
        exportable = make_exportable(plain)
        after = exportable(x)
    assert list(exportable.state_dict()) == keys
    assert any(isinstance(m, ExportableAttention) for m in exportable.modules())
    assert any(isinstance(m, ExportableLayerNorm) for m in exportable.modules())
    assert torch.equal(before, after)  # outside torch.export nothing changes


def _exported_matches_eager(module: torch.nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    with torch.no_grad(), export_forms("xnnpack"):
        exported = torch.export.export(module, (example,))
        torch.testing.assert_close(exported.module()(example), module(example), atol=1e-5, rtol=0)
    return exported


def _targets(exported: torch.export.ExportedProgram) -> set[str]:
    return {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}


@pytest.mark.parametrize("model", ["mobilevit_xxs", "mobilevitv2_050"])
def test_exported_image_tower_matches_eager_and_has_no_masking_or_norm_ops(model):
    torch.manual_seed(0)
    tower = MobileViTImageTower(model, 64, 32).eval()
    targets = _targets(_exported_matches_eager(tower, torch.randn(2, 3, 64, 64)))
    assert not [t for t in targets if any(op in t for op in ("layer_norm", "group_norm", "scaled_dot_product", "split"))]
    with export_forms("xnnpack"), native_export_blocks():  # the modules' own forwards, for comparison
        native = _targets(torch.export.export(tower, (torch.randn(2, 3, 64, 64),)))
    assert any("layer_norm" in t or "group_norm" in t for t in native)
    # Other targets (Core ML) export outside export_forms("xnnpack") and get the native graph too.
    for backend in (None, "coreml"):
        with export_forms(backend) if backend else nullcontext():
            assert _targets(torch.export.export(tower, (torch.randn(2, 3, 64, 64),))) == native


def test_exported_text_tower_matches_eager():
    torch.manual_seed(0)
    tower = TextEncoder(vocab_size=300, embed_dim=32, layers=2, hidden=64, heads=4, ffn=128, max_length=16).eval()
    ids = torch.zeros(2, 16, dtype=torch.long)
    ids[0, :9], ids[1, :16] = torch.randint(5, 300, (9,)), torch.randint(5, 300, (16,))
    targets = _targets(_exported_matches_eager(tower, ids))
    assert not [t for t in targets if "layer_norm" in t]


def _v1_transformer() -> torch.nn.Module:
    """MobileViT v1's global part: a transformer layer (multi-head attention, layer norms) and the closing norm."""
    layer = TransformerBlock(
        32, num_heads=4, mlp_ratio=2.0, qkv_bias=True, act_layer=torch.nn.SiLU, norm_layer=torch.nn.LayerNorm
    )
    return make_exportable(torch.nn.Sequential(layer, torch.nn.LayerNorm(32)))


def _v2_transformer() -> torch.nn.Module:
    """MobileViT v2's global part: a linear-attention layer (one-group norms) and the closing norm."""
    return make_exportable(torch.nn.Sequential(LinearTransformerBlock(32), GroupNorm1(32)))


def _tiny_text_tower() -> torch.nn.Module:
    return TextEncoder(vocab_size=200, embed_dim=16, layers=1, hidden=32, heads=2, ffn=64, max_length=12)


def _tiny_ids() -> torch.Tensor:
    ids = torch.zeros(1, 12, dtype=torch.long)
    ids[0, :7] = torch.tensor([1, 17, 44, 9, 120, 33, 2])
    return ids


LOWERED = [
    ("v1 transformer", _v1_transformer, lambda: torch.randn(4, 16, 32), None),  # [B * pixels, patches, C]
    ("v1 transformer", _v1_transformer, lambda: torch.randn(4, 16, 32), "static"),
    ("v2 transformer", _v2_transformer, lambda: torch.randn(1, 32, 4, 16), None),  # [B, C, pixels, patches]
    ("v2 transformer", _v2_transformer, lambda: torch.randn(1, 32, 4, 16), "static"),
    ("text tower", _tiny_text_tower, _tiny_ids, None),
    ("text tower", _tiny_text_tower, _tiny_ids, "dynamic"),
]


@pytest.mark.parametrize(("name", "build", "example", "quantize"), LOWERED, ids=[f"{n}-{q or 'fp32'}" for n, _, _, q in LOWERED])
def test_lowered_blocks_are_delegated_to_xnnpack(name, build, example, quantize, tmp_path):
    torch.manual_seed(0)
    module, x = build().eval(), example()
    calibration = [x + 0.1 * torch.randn_like(x) for _ in range(4)] if quantize == "static" else None
    with torch.no_grad():
        eager = module(x)
    target = ExecuTorchTarget(strict=True)
    written = target.export_program(module, x, tmp_path / "block.pte", quantize=quantize, calibration=calibration)
    summary = written.delegation
    if quantize is None:  # XNNPACK's own kernels give eager's numbers (its layouts must not change the maths)
        torch.testing.assert_close(target.load(written.path)(x), eager, atol=1e-4, rtol=0)
    left = summary.non_delegated_ops
    assert not [op for op in left if op in MASKING_OPS + NORM_OPS], left
    if name != "text tower":
        assert left == {}, left
    else:  # the token lookup, the padding comparison and its float cast, the real-token count
        assert set(left) <= {
            "aten_embedding_default",
            "aten_ne_scalar",
            "dim_order_ops__to_dim_order_copy_default",
            "aten_sum_dim_int_list",
        }, left
    assert summary.fraction >= 0.95, (summary.fraction, left)
