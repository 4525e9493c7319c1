"""Bilingual image-caption data: JSONL manifests, WebDataset-style tar shards and the demo world.

Every source is a map-style torch `Dataset`: `ds[i]` is a `Sample` (RGB image, caption, "en" or
"zh", key) or None when the sample was skipped; `ds.skipped` counts skips per reason,
`ds.skip_log` lists the first (key, reason) pairs, `ds.digest()` identifies the listing for cache
keys and `ds.captions()` gives every (caption, lang) without decoding images.

Bad input follows `on_bad`: "skip" (default) counts it, "raise" raises `BadSampleError` naming the
file and the reason. Captions, languages, file existence and empty files are checked when a source
is opened; images are decoded when accessed.
"""

from __future__ import annotations

import inspect
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
from compress.errors import CompressError

_SOURCE_OPTIONS = {"manifest": ("lang",), "shards": ("lang",)}

__all__ = [
    "REASONS",
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
    """A dataset of `Sample`s from a spec.

    - "demo" or "demo:<split>" (train, val, test): the built-in demo world; options go to
      `compress.demo_world.open_demo` (size, image_size, seed).
    - a path to a .jsonl manifest, or "manifest:<path>".
    - a .tar shard, a folder of .tar shards, a pattern such as "shards/{000..009}.tar" or
      "shards/*.tar", or "shards:<pattern>".
    - a dict {"name": "manifest" | "shards" | "demo", "location": ..., other options}.
    - a list of any of these: one `MixedDataset` of them all, in order.

    Manifests and shards take `lang="en"|"zh"`, the language of samples that do not state one.
    `on_bad` is "skip" (the default) or "raise".
    """
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise CompressError("an empty list of data sources")
        return MixedDataset([open_dataset(part, on_bad=on_bad, **options) for part in spec])
    name, location, options = _split_spec(spec, options)
    if on_bad is None:
        on_bad = options.pop("on_bad", "skip")
    options.pop("on_bad", None)
    check_on_bad(on_bad)
    if name == "demo":
        return _open_demo(location, options)
    unknown = sorted(set(options) - set(_SOURCE_OPTIONS[name]))
    if unknown:
        accepted = ", ".join(_SOURCE_OPTIONS[name])
        raise CompressError(f"unknown option(s) for {name} data: {', '.join(unknown)}; accepted: {accepted}, on_bad")
    if name == "manifest":
        return open_manifest(location, on_bad=on_bad, **options)
    return open_shards(location, on_bad=on_bad, **options)


def _split_spec(spec, options: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    """(source kind, location, options) for every spec form but a list."""
    if isinstance(spec, dict):
        merged = {key: value for key, value in spec.items() if key not in ("name", "location")}
        merged.update(options)
        name = spec.get("name")
        if name not in ("manifest", "shards", "demo"):
            raise CompressError(f"data spec dict needs a name of manifest, shards or demo, not {name!r}")
        location = spec.get("location")
        if location is None and name != "demo":
            raise CompressError(f"data spec {spec!r} needs a 'location'")
        return name, location, merged
    if isinstance(spec, Path):
        return _kind_of_path(spec), spec, dict(options)
    if not isinstance(spec, str):
        raise CompressError(f"a data spec is a string, path, dict or list, not {type(spec).__name__}")
    if not spec.strip():
        raise CompressError("an empty data spec")
    if spec == "demo" or spec.startswith("demo:"):
        return "demo", spec.partition(":")[2] or None, dict(options)
    for prefix in ("manifest", "shards"):
        if spec.startswith(prefix + ":"):
            return prefix, spec[len(prefix) + 1 :], dict(options)
    if any(char in spec for char in "*?[{") and not Path(spec).expanduser().exists():
        return "shards", spec, dict(options)
    return _kind_of_path(Path(spec)), spec, dict(options)


def _kind_of_path(path: Path) -> str:
    path = path.expanduser()
    if path.is_dir():
        return "shards"
    if not path.exists():
        raise CompressError(f"{path}: no such file or folder (expected a .jsonl manifest, .tar shards or 'demo')")
    if path.suffix.lower() == ".jsonl":
        return "manifest"
    if path.suffix.lower() == ".tar":
        return "shards"
    raise CompressError(f"{path}: not a data source (expected a .jsonl manifest, a .tar shard or a folder of shards)")


def _open_demo(split: str | None, options: dict[str, Any]):
    split = options.pop("split", None) if split is None else split
    split = split or "train"
    from compress.demo_world import open_demo

    accepted = [name for name in inspect.signature(open_demo).parameters if name != "split"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise CompressError(f"unknown option(s) for demo data: {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    return open_demo(split=split, **options)
