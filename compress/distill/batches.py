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
    consumed: int  # sampler positions consumed, skipped samples included (of the global batch under DDP)
    skips: list[tuple[str, str, str]]  # (source, key, reason) of images that failed to decode
    rank_sizes: list[int] | None = None  # under DDP: every rank's usable samples of this global batch

    @property
    def total(self) -> int:
        """Usable samples of the (global) batch."""
        return sum(self.rank_sizes) if self.rank_sizes is not None else len(self.samples)

    @property
    def left_out(self) -> int:
        return self.consumed - self.total


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
        self.loader = DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, collate_fn=_collate, num_workers=num_workers, generator=generator
        )

    def __iter__(self) -> Iterator[Batch]:
        for samples, consumed in self.loader:
            yield Batch(samples=list(samples), consumed=consumed, skips=list(samples.skips))


class RankBatchStream:
    """One epoch's batches for one rank of a process group: the single-process batches of `batch_size`
    (the global batch) from position `start`, each split into `world_size` contiguous slices.

    Rank r loads only its slice; `Batch.consumed` is the global batch's positions, and the world's
    slices in rank order are the batch one process would take, so the order does not depend on the
    world size. `world.gather_objects` then tells every rank the others' usable counts and skips.
    """

    def __init__(self, dataset, batch_size: int, seed: int, epoch: int, start: int, world, num_workers: int = 0):
        order = list(EpochSampler(len(dataset), seed, epoch, start=start))
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.world, self.consumed = world, [len(chunk) for chunk in chunks]
        slices = [_rank_slice(chunk, world.rank, world.size) for chunk in chunks]
        generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
        self.loader = DataLoader(dataset, batch_sampler=slices, collate_fn=_collate, num_workers=num_workers, generator=generator)

    def __iter__(self) -> Iterator[Batch]:
        for (samples, _), consumed in zip(self.loader, self.consumed):
            shared = self.world.gather_objects((len(samples), list(samples.skips)))
            yield Batch(
                samples=list(samples),
                consumed=consumed,
                skips=[tuple(s) for _, skips in shared for s in skips],
                rank_sizes=[count for count, _ in shared],
            )


def _rank_slice(chunk: list[int], rank: int, world_size: int) -> list[int]:
    """Rank `rank`'s contiguous share of `chunk`; shares differ by at most one sample."""
    base, extra = divmod(len(chunk), world_size)
    begin = rank * base + min(rank, extra)
    return chunk[begin : begin + base + (1 if rank < extra else 0)]
