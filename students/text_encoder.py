"""A TinyBERT-style multilingual text tower in plain torch.

Built only from nn.Embedding, nn.Linear, nn.LayerNorm, GELU and matmul-softmax attention so that
`torch.export` at a static shape lowers cleanly to ExecuTorch XNNPACK and Core ML (Hugging Face's
BertModel does not convert). The padding mask is arithmetic on `ids == pad_id`: no
data-dependent control flow anywhere in `forward`. The layer norms export as ops XNNPACK takes
(`students.export_blocks`), and reshapes and `bmm` stand in for `unsqueeze` and `sum`, so the
only operators left to the portable kernels are the embedding lookup, the mask's comparison and
float cast, and the real-token count.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.errors import CompressError
from students.export_blocks import ExportableLayerNorm

POOLINGS = ("mean", "cls")
NORMS = ("pre", "post")


class SelfAttention(nn.Module):
    """Multi-head self-attention with an additive key mask, written as two matmuls and a softmax.

    `F.scaled_dot_product_attention` decomposes on export into a "safe softmax" (any/where ops)
    that XNNPACK does not take, which splits the delegated graph at every layer; the explicit form
    lowers whole. At caption lengths (tens of tokens) it costs nothing in training.
    """

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.attention_dropout = nn.Dropout(dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[N, L, hidden] -> [N * heads, L, head_dim], so both matmuls are plain 3-D bmm."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.heads, self.head_dim).transpose(1, 2).reshape(-1, length, self.head_dim)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        query = self._split_heads(self.query(x) * self.head_dim**-0.5)
        scores = torch.bmm(query, self._split_heads(self.key(x)).transpose(1, 2))
        scores = scores.reshape(batch, self.heads, length, length) + key_bias
        weights = self.attention_dropout(scores.softmax(dim=-1)).reshape(batch * self.heads, length, length)
        attended = torch.bmm(weights, self._split_heads(self.value(x)))
        return self.out(attended.reshape(batch, self.heads, length, self.head_dim).transpose(1, 2).reshape(batch, length, hidden))


class EncoderLayer(nn.Module):
    """One transformer layer: attention and a GELU feed-forward, each with a residual.

    "pre" normalises each branch's input (stable from scratch); "post" normalises after each
    residual sum, as BERT and TinyBERT do.
    """

    def __init__(self, hidden: int, heads: int, ffn: int, dropout: float, norm: str):
        super().__init__()
        self.norm = norm
        self.attention = SelfAttention(hidden, heads, dropout)
        self.attention_norm = ExportableLayerNorm(hidden)
        self.feed_forward = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))
        self.feed_forward_norm = ExportableLayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        if self.norm == "pre":
            x = x + self.dropout(self.attention(self.attention_norm(x), key_bias))
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, key_bias)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class TextEncoder(nn.Module):
    """Token ids `[N, L]` int64 (pad 0, L <= max_length) to unnormalised embeddings `[N, embed_dim]`."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        layers: int = 4,
        hidden: int = 256,
        heads: int = 4,
        ffn: int = 512,
        max_length: int = 32,
        pooling: str = "mean",
        norm: str = "pre",
        dropout: float = 0.0,
        pad_id: int = 0,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise CompressError(f"text pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        if norm not in NORMS:
            raise CompressError(f"text norm must be one of {', '.join(NORMS)}, not {norm!r}")
        if hidden % heads:
            raise CompressError(f"text hidden size {hidden} is not divisible by {heads} heads")
        for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("layers", layers), ("ffn", ffn)):
            if value < 1:
                raise CompressError(f"text {name} must be positive, got {value}")
        if max_length < 2:
            raise CompressError(f"text max_length must be at least 2 (bos and eos), got {max_length}")
        self.max_length, self.pooling, self.pad_id = max_length, pooling, pad_id
        self.token_embedding = nn.Embedding(vocab_size, hidden, padding_idx=pad_id)
        self.position_embedding = nn.Parameter(torch.zeros(max_length, hidden))
        self.embedding_norm = ExportableLayerNorm(hidden)
        self.embedding_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn, dropout, norm) for _ in range(layers))
        self.final_norm = ExportableLayerNorm(hidden) if norm == "pre" else nn.Identity()
        self.projection = nn.Linear(hidden, embed_dim, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.position_embedding, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[self.pad_id].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch, length = ids.shape
        if length > self.max_length:
            raise CompressError(f"text tower takes at most {self.max_length} tokens, got {length}")
        keep = (ids != self.pad_id).to(self.position_embedding.dtype)  # [N, L], 1 for real tokens
        # Padded keys get the most negative value so softmax gives them no weight; bos is never padding.
        key_bias = ((1.0 - keep) * torch.finfo(keep.dtype).min).reshape(batch, 1, 1, length)
        x = self.token_embedding(ids) + self.position_embedding[:length]
        x = self.embedding_dropout(self.embedding_norm(x))
        for layer in self.layers:
            x = layer(x, key_bias)
        x = self.final_norm(x)
        if self.pooling == "cls":
            pooled = x[:, 0]
        else:
            weights = keep / keep.sum(dim=1, keepdim=True).clamp(min=1.0)  # the mean over real tokens, as one bmm
            pooled = torch.bmm(weights.reshape(batch, 1, length), x).reshape(batch, -1)
        return self.projection(pooled)
