"""Batches of raw samples for the trainer, from a resumable position in a seeded epoch order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Sampler

from compress.data.loader import SampleBatch, collate_samples
from compress.data.sample import Sample
from compress.data.sampler import EpochSampler


@dataclass
class Batch:
    """The usable samples of one batch, how many sampler positions it used up, and the skips it carried."""

    samples: list[Sample]
    consumed: int  # sampler positions consumed, skipped samples included
    skips: list[tuple[str, str, str]]  # (source, key, reason) of images that failed to decode

    @property
    def left_out(self) -> int:
        return self.consumed - len(self.samples)


class _InOrder(Sampler[int]):
    """Indices start..n-1 in order (validation needs no shuffling)."""

    def __init__(self, n: int, start: int = 0):
        self.n, self.start = n, start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.n))

    def __len__(self) -> int:
        return self.n - self.start


def _collate(raw: Sequence[Sample | None]) -> tuple[SampleBatch, int]:
    return collate_samples(raw), len(raw)


class BatchStream:
    """One epoch's batches from position `start` on.

    The order is `EpochSampler(n, seed, epoch, start)`, or plain index order when `seed` is None.

    The loader gets its own generator, seeded from (seed, epoch), so creating it draws nothing from
    the global torch RNG: a run resumed mid-epoch keeps the same random stream as an uninterrupted one.
    """

    def __init__(self, dataset, batch_size: int, seed: int | None, epoch: int, start: int = 0, num_workers: int = 0):
        n = len(dataset)
        sampler = _InOrder(n, start) if seed is None else EpochSampler(n, seed, epoch, start=start)
        generator = torch.Generator().manual_seed(((seed or 0) * 1_000_003 + epoch) % 2**63)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=_collate,
                                 num_workers=num_workers, generator=generator)

    def __iter__(self) -> Iterator[Batch]:
        for samples, consumed in self.loader:
            yield Batch(samples=list(samples), consumed=consumed, skips=list(samples.skips))
