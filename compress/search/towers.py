"""The exportable module of a candidate and an example input of the static shape it exports with."""

from __future__ import annotations

import torch
from torch import nn

from compress.search.space import Candidate, family_towers

TEXT_BOS, TEXT_EOS, TEXT_FIRST_PIECE = 2, 3, 4  # students.tokenizer's fixed ids (pad is 0)


def build_tower(candidate: Candidate, seed: int = 0) -> nn.Module:
    """The candidate's tower in eval mode, with weights drawn from `seed` (or its checkpoint)."""
    options = candidate.resolved
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tower = family_towers().build(candidate.family, options, candidate.embed_dim)
    return tower.eval()


def example_input(candidate: Candidate, seed: int = 0) -> torch.Tensor:
    """Batch 1 at the tower's static shape: normalised pixels, or a padded id row (bos, pieces, eos, pad)."""
    options = candidate.resolved
    generator = torch.Generator().manual_seed(seed)
    if candidate.family == "image":
        size = options["image_size"]
        return torch.randn(1, 3, size, size, generator=generator)
    return text_ids(options["max_length"], options["vocab_size"], generator)


def text_ids(max_length: int, vocab_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`[1, max_length]` int64: bos, random pieces filling about two thirds of the row, eos, then padding."""
    ids = torch.zeros(1, max_length, dtype=torch.long)
    pieces = max(0, (2 * max_length) // 3 - 2)
    ids[0, 0] = TEXT_BOS
    if pieces:
        high = max(vocab_size, TEXT_FIRST_PIECE + 1)
        ids[0, 1 : 1 + pieces] = torch.randint(TEXT_FIRST_PIECE, high, (pieces,), generator=generator)
    ids[0, 1 + pieces] = TEXT_EOS
    return ids
