"""Bilingual image-caption data from registered data sources: JSONL manifests, WebDataset-style tar shards, ...

Every source is a map-style torch `Dataset`: `ds[i]` is a `Sample` (RGB image, caption, "en" or
"zh", key) or None when the sample was skipped; `ds.skipped` counts skips per reason,
`ds.skip_log` lists the first (key, reason) pairs, `ds.digest()` identifies the listing for cache
keys and `ds.captions()` gives every (caption, lang) without decoding images.

Bad input follows `on_bad`: "skip" (default) counts it, "raise" raises `BadSampleError` naming the
file and the reason. Captions, languages, file existence and empty files are checked when a source
is opened; images are decoded when accessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compress.data.images import load_image
from compress.data.indexed import Entry, IndexedDataset
from compress.data.loader import MixedDataset, SampleBatch, SkipStats, collate_samples
from compress.data.manifest import open_manifest
from compress.data.policy import REASONS, check_on_bad
from compress.data.sample import Sample
from compress.data.sampler import EpochSampler, epoch_order, spread_samples
from compress.data.shards import open_shards
from compress.data.sources import DataSource, ZeroShotTask, bare_source_names, get_source, open_from_source, source_names
from compress.errors import CompressError
from compress.specs import data_spec

__all__ = [
    "REASONS",
    "DataSource",
    "ZeroShotTask",
    "get_source",
    "source_names",
    "EpochSampler",
    "Entry",
    "IndexedDataset",
    "MixedDataset",
    "Sample",
    "SampleBatch",
    "SkipStats",
    "collate_samples",
    "epoch_order",
    "spread_samples",
    "load_image",
    "open_dataset",
    "open_manifest",
    "open_shards",
]


def open_dataset(spec: str | Path | dict[str, Any] | Sequence, on_bad: str | None = None, **options):
    """A dataset of `Sample`s from a data spec (the grammar of `compress.specs`).

    - "<source>" or "<source>:<location>" for a registered data source (`compress plugins --kind data`):
      "demo:val" (the demo world's val split; options size, image_size, seed), "manifest:<file.jsonl>",
      "shards:<pattern>".
    - a path to a .jsonl manifest; a .tar shard, a folder of .tar shards, or a pattern such as
      "shards/{000..009}.tar" or "shards/*.tar".
    - a dict {"name": <source>, "location": ..., other options}.
    - a list of any of these: one `MixedDataset` of them all, in order.

    Manifests and shards take `lang="en"|"zh"`, the language of samples that do not state one.
    `on_bad` is "skip" (the default) or "raise".
    """
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise CompressError("an empty list of data sources")
        return MixedDataset([open_dataset(part, on_bad=on_bad, **options) for part in spec])
    names = source_names()
    bare = bare_source_names() if isinstance(spec, str) and spec in names else []  # loads plugins only when needed
    parsed = data_spec(spec, names, options, bare=bare)
    options = dict(parsed.options)
    if on_bad is None:
        on_bad = options.pop("on_bad", "skip")
    options.pop("on_bad", None)
    check_on_bad(on_bad)
    return open_from_source(parsed.source, parsed.location, on_bad, options)
