"""Batching raw samples, mixing sources, and adding up what was skipped.

    loader = DataLoader(dataset, batch_size=32, sampler=EpochSampler(len(dataset), seed, epoch),
                        collate_fn=collate_samples, num_workers=4)
    stats = SkipStats.of(dataset)          # skips found when the sources were opened
    for batch in loader:                   # a SampleBatch: a list of Sample
        stats.add_batch(batch)             # skips found while decoding, in any worker
    print(stats.summary())                 # "skipped: 3 (corrupt_image 2, empty_caption 1)"
    report["skipped"] = stats.to_dict()

A sample that fails to decode is counted once however many epochs or workers see it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

from torch.utils.data import ConcatDataset, Dataset

from compress.data.policy import SKIP_LOG_LIMIT, drain_journal
from compress.data.sample import Sample


class SampleBatch(list):
    """The samples of one batch (skipped ones left out), and the skips noted while loading it.

    `skips` holds (source, key, reason) for every image that failed to decode in the loading
    process since its previous batch.
    """

    def __init__(self, samples: Iterable[Sample] = (), skips: Iterable[tuple[str, str, str]] = ()):
        super().__init__(samples)
        self.skips = list(skips)


def collate_samples(samples: Sequence[Sample | None]) -> SampleBatch:
    """A DataLoader `collate_fn`: drops the None entries (skipped samples) and keeps the rest as they are."""
    return SampleBatch((sample for sample in samples if sample is not None), drain_journal())


class MixedDataset(ConcatDataset):
    """Several sources one after another, with the same interface as each source."""

    def __init__(self, datasets: Sequence[Dataset]):
        super().__init__(list(datasets))

    @property
    def skipped(self) -> Counter:
        total: Counter = Counter()
        for dataset in self.datasets:
            total.update(dataset.skipped)
        return total

    @property
    def skip_log(self) -> list[tuple[str, str]]:
        log = [item for dataset in self.datasets for item in getattr(dataset, "skip_log", [])]
        return log[:SKIP_LOG_LIMIT]

    def captions(self) -> list[tuple[str, str]]:
        return [pair for dataset in self.datasets for pair in dataset.captions()]

    def digest(self) -> str:
        """sha256 hex over the parts' digests, in order."""
        hasher = hashlib.sha256(b"compress.data/mixed\n")
        for dataset in self.datasets:
            hasher.update(dataset.digest().encode() + b"\n")
        return hasher.hexdigest()

    def __repr__(self) -> str:
        return f"MixedDataset({len(self)} samples from {len(self.datasets)} sources)"


class SkipStats:
    """Skip counts per reason, merged from datasets and from the batches a DataLoader produced."""

    def __init__(self):
        self._at_open: dict[int, Counter] = {}  # id(dataset) -> reasons found when it was opened
        self._at_access: dict[tuple[str, str], str] = {}  # (source, key) -> reason it failed to decode

    @classmethod
    def of(cls, *datasets: Dataset) -> SkipStats:
        stats = cls()
        for dataset in datasets:
            stats.add_dataset(dataset)
        return stats

    def add_dataset(self, dataset: Dataset) -> None:
        """Take in the skips `dataset` (or each part of a mixed one) has seen in this process."""
        for part in _sources(dataset):
            if hasattr(part, "skipped_at_open"):
                self._at_open[id(part)] = Counter(part.skipped_at_open)
                for key, reason in part.decode_failures.items():
                    self._at_access[(part.location, key)] = reason
            else:  # a source that finds all its skips up front, such as the demo world
                self._at_open[id(part)] = Counter(part.skipped)

    def add_batch(self, batch) -> None:
        """Take in the decoding skips a `collate_samples` batch carries."""
        for source, key, reason in getattr(batch, "skips", ()):
            self._at_access[(source, key)] = reason

    @property
    def counts(self) -> Counter:
        total: Counter = Counter()
        for counter in self._at_open.values():
            total.update(counter)
        total.update(self._at_access.values())
        return +total

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line such as "skipped: 3 (corrupt_image 2, empty_caption 1)"."""
        counts = self.counts
        if not counts:
            return "skipped: 0"
        parts = ", ".join(f"{reason} {count}" for reason, count in _by_count(counts))
        return f"skipped: {sum(counts.values())} ({parts})"

    def to_dict(self) -> dict:
        """{"total": n, "by_reason": {reason: count}} for report.json, largest first."""
        counts = self.counts
        return {"total": sum(counts.values()), "by_reason": dict(_by_count(counts))}


def _sources(dataset: Dataset) -> list[Dataset]:
    """The single sources inside `dataset`, however deeply mixed."""
    if isinstance(dataset, ConcatDataset):
        return [source for part in dataset.datasets for source in _sources(part)]
    return [dataset]


def _by_count(counts: Counter) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
