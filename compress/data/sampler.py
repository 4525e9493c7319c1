"""A seeded, resumable order of sample indices for one epoch, and evenly spread subsets.

Epoch e of a run with seed s visits the indices in the permutation `epoch_order(n, s, e)`. With
several ranks (DistributedDataParallel), the permutation is padded by wrapping around to a multiple
of the world size and rank r takes every world_size-th index from position r, so every rank has
the same number of steps. `start` skips the first `start` positions of this rank's share, so a run
stopped after consuming k samples of an epoch resumes with `EpochSampler(n, seed, epoch, start=k)`
and sees exactly the samples it had not seen yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from compress.errors import CompressError


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The permutation of range(n) for (seed, epoch); the same on every call and every rank."""
    # Hashing the pair keeps (seed=1, epoch=0) and (seed=0, epoch=1) unrelated.
    mixed = int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:8], "little") >> 1
    generator = torch.Generator().manual_seed(mixed)
    return torch.randperm(n, generator=generator).tolist()


class EpochSampler(Sampler[int]):
    """Indices of epoch `epoch` for this rank, from position `start` of its share on."""

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world_size: int = 1):
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of size {world_size}")
        self.n, self.seed, self.epoch = n, seed, epoch
        self.rank, self.world_size = rank, world_size
        self.per_rank = -(-n // world_size)  # ceil: every rank takes the same number of samples
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"start {start} is outside this rank's {self.per_rank} positions of epoch {epoch}")
        self.start = start

    def rank_order(self) -> list[int]:
        """This rank's full share of the epoch, from position 0."""
        order = epoch_order(self.n, self.seed, self.epoch)
        total = self.per_rank * self.world_size
        padded = (order * (total // max(self.n, 1) + 1))[:total] if self.n else []
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.rank_order()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start

    def __repr__(self) -> str:
        return (
            f"EpochSampler(n={self.n}, seed={self.seed}, epoch={self.epoch}, start={self.start}, "
            f"rank={self.rank}, world_size={self.world_size})"
        )


def spread_samples(data, count: int, source: str) -> list:
    """`count` samples spread evenly over `data` (skipped samples are passed over)."""
    if count < 1:
        raise CompressError(f"{source}: the sample count must be at least 1, got {count}")
    if len(data) == 0:
        raise CompressError(f"{source}: no samples")
    step = max(1, len(data) // count)
    samples = []
    for index in range(0, len(data), step):
        sample = data[index]
        if sample is not None:
            samples.append(sample)
        if len(samples) == count:
            break
    if not samples:
        raise CompressError(f"{source}: every sample was skipped")
    return samples
