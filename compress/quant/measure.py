"""Measurements for quantization reports: size, latency, and agreement with the fp32 embeddings."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from compress.console import make_console


def state_dict_bytes(module: torch.nn.Module) -> int:
    """Bytes of the module's serialised state dict (quantized tensor subclasses count at their packed size)."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def latency_ms(fn: Callable[..., object], *inputs, warmup: int = 2, iterations: int = 10) -> float:
    """Median wall time of `fn(*inputs)` in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn(*inputs)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn(*inputs)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def embedding_cosine(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Mean row-wise cosine similarity between two [N, D] embedding matrices."""
    if reference.shape != candidate.shape:
        raise ValueError(f"embedding shapes differ: {list(reference.shape)} vs {list(candidate.shape)}")
    return F.cosine_similarity(reference.float(), candidate.float(), dim=-1).mean().item()


@torch.no_grad()
def encoder_agreement(
    reference, candidate, images: Sequence = (), texts: Sequence[str] = (), lang: str = "en"
) -> dict[str, float]:
    """Mean cosine between two encoders' embeddings of the same images and texts.

    `reference` and `candidate` are anything with `encode_images` / `encode_texts(texts, lang)`
    (an fp32 student and its quantized copy, or a bundle). Keys: "image_cosine", "text_cosine"
    (only for the inputs given).
    """
    result = {}
    if images:
        result["image_cosine"] = embedding_cosine(reference.encode_images(list(images)), candidate.encode_images(list(images)))
    if texts:
        result["text_cosine"] = embedding_cosine(
            reference.encode_texts(list(texts), lang), candidate.encode_texts(list(texts), lang)
        )
    return result


@dataclass
class QuantRow:
    """One line of a quantization report."""

    mode: str  # "fp32", "int8 static (xnnpack)", "int8 dynamic (torchao)", ...
    tower: str  # "image" or "text"
    bytes: int
    latency_ms: float
    cosine: float  # mean cosine to the fp32 embeddings (1.0 for fp32 itself)
    top1: float | None = None  # zero-shot top-1 when the caller measured it

    def to_dict(self) -> dict:
        return asdict(self)


def print_quant_table(rows: Sequence[QuantRow], title: str = "quantization", console: Console | None = None) -> Table:
    """A rich table of rows with size and latency ratios against the fp32 row of the same tower."""
    fp32 = {row.tower: row for row in rows if row.mode == "fp32"}
    table = Table(title=title)
    for column in ("tower", "mode", "size MB", "size ratio", "latency ms", "speed-up", "cosine vs fp32", "top-1"):
        table.add_column(column, justify="left" if column in ("tower", "mode") else "right")
    for row in rows:
        base = fp32.get(row.tower)
        size_ratio = f"{base.bytes / row.bytes:.2f}x" if base and row.bytes else "-"
        speed = f"{base.latency_ms / row.latency_ms:.2f}x" if base and row.latency_ms else "-"
        top1 = f"{100 * row.top1:.1f}" if row.top1 is not None else "-"
        table.add_row(
            row.tower, row.mode, f"{row.bytes / 1e6:.2f}", size_ratio, f"{row.latency_ms:.2f}", speed, f"{row.cosine:.4f}", top1
        )
    (console or make_console()).print(table)
    return table
