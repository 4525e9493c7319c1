"""The student's normalisation and attention blocks in a form ExecuTorch's XNNPACK delegate runs whole.

ExecuTorch 1.5's XNNPACK partitioner takes no layer or group norm, no `sum`, `split` or
`expand`, and `F.scaled_dot_product_attention` exports as a "safe softmax" (`any`, `eq`,
`logical_not`, `where`, `full_like`) plus broadcast copies; all of those run on the portable
kernels and cut the delegated graph into pieces. The classes here subclass the torch and timm
modules they stand in for (same parameters, same state_dict keys) and switch to an export form
only while `torch.export` traces them for XNNPACK, so training and eager inference keep the fused
kernels, and other targets (Core ML, whose own layer norm is safer in fp16) get the native graph:

- layer / group norm: statistics with `mean` over the two innermost dims of a 4-D view (XNNPACK's
  global average pooling), `sub`, `pow`, `sqrt`, `div`;
- multi-head attention: two 3-D `bmm` and a last-dim softmax, no masking ops;
- MobileViT v2's linear attention: slices instead of `split`, one `bmm` for the context vector,
  broadcasting instead of `expand`.

    tower = make_exportable(timm.create_model("mobilevit_xxs", num_classes=0))
    with export_forms("xnnpack"):  # targets.executorch_target enters this (the classes' hook) around its export
        torch.export.export(tower, (pixels,))
    with export_forms("xnnpack"), native_export_blocks():  # the native graph anyway, for comparison
        torch.export.export(tower, (pixels,))
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from timm.layers import GroupNorm1
from timm.layers.attention import Attention
from timm.models.mobilevit import LinearSelfAttention
from torch import nn

BACKENDS = ("xnnpack",)  # the backends these export forms are made for
_active = 0  # open export_forms("xnnpack") blocks
_native_export = False


@contextmanager
def export_forms(backend: str) -> Iterator[None]:
    """While open, `torch.export` traces the blocks in the export form made for `backend`, if there is one."""
    global _active
    wanted = backend in BACKENDS
    _active += wanted
    try:
        yield
    finally:
        _active -= wanted


@contextmanager
def native_export_blocks() -> Iterator[None]:
    """Inside this block, `torch.export` traces the modules' original forwards (the graph before the rewrite)."""
    global _native_export
    previous, _native_export = _native_export, True
    try:
        yield
    finally:
        _native_export = previous


def exporting_export_form() -> bool:
    return _active > 0 and not _native_export and torch.compiler.is_exporting()


def _normalise(x4: torch.Tensor, eps: float) -> torch.Tensor:
    """Zero mean, unit variance over dims 2 and 3 of a 4-D tensor, from ops XNNPACK delegates.

    In the int8 graph the quantizer annotates `add` and `mul`, so the statistics avoid both: the
    variance (which spans orders of magnitude across rows) would not survive one int8 range. Hence
    `var - (-eps)` rather than `var + eps`, and a division by the standard deviation.
    """
    mean = x4.mean(dim=(2, 3), keepdim=True)
    centered = x4 - mean
    variance = centered.pow(2).mean(dim=(2, 3), keepdim=True)
    return centered / torch.sqrt(variance - (-eps))


def layer_norm_last_dim(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """`F.layer_norm(x, x.shape[-1:], weight, bias, eps)` in delegable ops."""
    width = x.shape[-1]
    rows = math.prod(x.shape[:-1])
    out = _normalise(x.reshape(rows, 1, width, 1), eps).reshape(x.shape)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm_one_group(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """`F.group_norm(x, 1, weight, bias, eps)` (statistics over every dim but the batch) in delegable ops."""
    batch = x.shape[0]
    out = _normalise(x.reshape(batch, 1, math.prod(x.shape[1:]), 1), eps).reshape(x.shape)
    affine_shape = (x.shape[1],) + (1,) * (x.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(affine_shape)
    if bias is not None:
        out = out + bias.reshape(affine_shape)
    return out


class ExportableLayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` over the last dim; exports as delegable ops."""

    export_forms = staticmethod(export_forms)  # the hook targets.executorch_target enters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting_export_form() and len(self.normalized_shape) == 1:
            return layer_norm_last_dim(x, self.weight, self.bias, self.eps)
        return super().forward(x)


class ExportableGroupNorm1(GroupNorm1):
    """timm's one-group GroupNorm (MobileViT v2); exports as delegable ops."""

    export_forms = staticmethod(export_forms)  # the hook targets.executorch_target enters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting_export_form():
            return group_norm_one_group(x, self.weight, self.bias, self.eps)
        return super().forward(x)


def attention_export_form(module: Attention, x: torch.Tensor) -> torch.Tensor:
    """timm's multi-head self-attention (no mask) as slices, 3-D `bmm` and a last-dim softmax."""
    batch, length, _ = x.shape
    heads, head_dim, width = module.num_heads, module.head_dim, module.attn_dim
    gate = module.gate(x).sigmoid() if module.gate is not None else None
    qkv = module.qkv(x)

    def heads_of(part: int) -> torch.Tensor:  # [B, N, 3 * width] -> [B, heads, N, head_dim]
        return qkv[:, :, part * width : (part + 1) * width].reshape(batch, length, heads, head_dim).permute(0, 2, 1, 3)

    query, key, value = module.q_norm(heads_of(0)), module.k_norm(heads_of(1)), heads_of(2)
    query = (query * module.scale).reshape(batch * heads, length, head_dim)
    key = key.reshape(batch * heads, length, head_dim)
    scores = torch.bmm(query, key.transpose(1, 2))
    weights = module.attn_drop(scores.softmax(dim=-1))
    attended = torch.bmm(weights, value.reshape(batch * heads, length, head_dim))
    out = attended.reshape(batch, heads, length, head_dim).permute(0, 2, 1, 3).reshape(batch, length, width)
    out = module.norm(out)
    if gate is not None:
        out = out * gate
    return module.proj_drop(module.proj(out))


class ExportableAttention(Attention):
    """timm's `Attention` (fused SDPA in training where timm enables it); exports without the safe-softmax masking ops."""

    export_forms = staticmethod(export_forms)  # the hook targets.executorch_target enters

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        if exporting_export_form() and attn_mask is None and not is_causal:
            return attention_export_form(self, x)
        return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)


def linear_attention_export_form(module: LinearSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """MobileViT v2's separable self-attention on `[B, C, P, N]`, with the sum over patches as one `bmm`."""
    batch, _, pixels, patches = x.shape
    width = module.embed_dim
    qkv = module.qkv_proj(x)  # [B, 1 + 2 * width, P, N]
    query, key, value = qkv[:, :1], qkv[:, 1 : 1 + width], qkv[:, 1 + width :]
    # Softmax over the patches of a 2-D view: XNNPACK keeps a convolution's 4-D output channels-last,
    # and its softmax on such a tensor would run over the channels instead of the last logical dim.
    scores = module.attn_drop(F.softmax(query.reshape(batch * pixels, patches), dim=-1))
    # context[b, c, p] = sum_n key[b, c, p, n] * scores[b, p, n], batched over (b, p)
    key_rows = key.permute(0, 2, 1, 3).reshape(batch * pixels, width, patches)
    context = torch.bmm(key_rows, scores.reshape(batch * pixels, patches, 1))
    context = context.reshape(batch, pixels, width, 1).permute(0, 2, 1, 3)  # [B, width, P, 1]
    return module.out_drop(module.out_proj(F.relu(value) * context))


class ExportableLinearSelfAttention(LinearSelfAttention):
    """timm's `LinearSelfAttention`; its self-attention exports without `split`, `sum` and `expand`."""

    export_forms = staticmethod(export_forms)  # the hook targets.executorch_target enters

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor | None = None) -> torch.Tensor:
        if exporting_export_form() and x_prev is None:
            return linear_attention_export_form(self, x)
        return super().forward(x, x_prev)


EXPORT_FORMS: dict[type[nn.Module], type[nn.Module]] = {
    nn.LayerNorm: ExportableLayerNorm,
    GroupNorm1: ExportableGroupNorm1,
    Attention: ExportableAttention,
    LinearSelfAttention: ExportableLinearSelfAttention,
}


def make_exportable(module: nn.Module) -> nn.Module:
    """Give every block of a known type (exact type match) its exportable subclass, in place.

    Only the class changes: parameters, buffers and state_dict keys stay as they are, so
    checkpoints written before load unchanged.
    """
    for child in module.modules():
        exportable = EXPORT_FORMS.get(type(child))
        if exportable is not None:
            child.__class__ = exportable
    return module
