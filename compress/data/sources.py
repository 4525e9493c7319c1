"""Data sources: the plugin kind behind every data spec (`compress.data` entry points).

A data source opens a dataset of `Sample`s from a location and options; that is all most sources
do (`manifest`, `shards`). A source may also offer evaluation material, which evaluation, the
bundle's label sets and the student search then use without knowing which source it is:

- `zero_shot_tasks()`: labelled classification tasks, each with class names and prompt templates
  per language and `test_samples(count, split="test", **options) -> (images, labels)`;
- `retrieval_pairs(count, lang, split="test", **options) -> (images, captions)`, caption i of image i.

A third-party source is a class (or factory) registered under `compress.data` whose instances
have `open(location, *, on_bad, **options)`; its name is then a data spec prefix: "mine:location".
A class attribute `location_required = True` says a bare "mine" is a path, not the source.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from compress import registry
from compress.errors import CompressError

KIND = "data"


@runtime_checkable
class ZeroShotTask(Protocol):
    """A labelled task: class i is `classnames[lang][i]`; prompts are `templates[lang]`, each with one `{}`."""

    name: str
    classnames: dict[str, list[str]]
    templates: dict[str, list[str]]

    def test_samples(self, count: int, split: str = "test", **options) -> tuple[list[Image.Image], list[int]]: ...


@runtime_checkable
class DataSource(Protocol):
    """Opens a dataset of `Sample`s (`ds[i]`, `len`, `skipped`, `skip_log`, `digest()`, `captions()`)."""

    def open(self, location: Any, *, on_bad: str = "skip", **options): ...


def source_names() -> list[str]:
    return registry.names(KIND)


def bare_source_names() -> list[str]:
    """Sources a spec may name without a location ("demo"); a bare "shards" or "manifest" is a path."""
    return [name for name in source_names() if not getattr(registry.get(KIND, name), "location_required", False)]


def get_source(name: str) -> DataSource:
    """The registered data source `name`, ready to open datasets."""
    return registry.get(KIND, name)()


def open_from_source(name: str, location: Any, on_bad: str, options: dict[str, Any]):
    """`get_source(name).open(location, on_bad=..., **options)`, refusing options the source does not take."""
    source = get_source(name)
    accepted = _accepted_options(source.open)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            listing = ", ".join([*accepted, "on_bad"])
            raise CompressError(f"unknown option(s) for {name} data: {', '.join(unknown)}; accepted: {listing}")
    return source.open(location, on_bad=on_bad, **options)


def _accepted_options(method) -> list[str] | None:
    """The keyword options `method` takes besides location and on_bad (None when it takes any)."""
    parameters = list(inspect.signature(method).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters[1:] if p.name != "on_bad" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def sources_with_tasks() -> dict[str, DataSource]:
    """Every registered source that offers zero-shot tasks, by name."""
    found = {}
    for name in source_names():
        try:
            source = get_source(name)
        except Exception:  # noqa: BLE001 - a broken third-party source must not hide the others
            continue
        if callable(getattr(source, "zero_shot_tasks", None)):
            found[name] = source
    return found


def zero_shot_tasks(source_name: str) -> list[ZeroShotTask]:
    source = get_source(source_name)
    if not callable(getattr(source, "zero_shot_tasks", None)):
        raise CompressError(f"data source {source_name!r} offers no zero-shot tasks")
    return list(source.zero_shot_tasks())


def zero_shot_task(source_name: str, task: str) -> ZeroShotTask:
    """One task of a source, by name; an unknown one is an error listing the source's tasks."""
    tasks = {t.name: t for t in zero_shot_tasks(source_name)}
    if task not in tasks:
        raise CompressError(f"unknown {source_name} task {task!r}; tasks: {', '.join(tasks)}")
    return tasks[task]


def retrieval_pairs(source_name: str, count: int, lang: str, split: str = "test", **options):
    """(images, captions) of a source that offers retrieval pairs."""
    source = get_source(source_name)
    if not callable(getattr(source, "retrieval_pairs", None)):
        raise CompressError(f"data source {source_name!r} offers no retrieval pairs")
    return source.retrieval_pairs(count, lang, split=split, **options)


class ManifestSource:
    """A JSONL manifest of (image path, caption, lang); location: the .jsonl file."""

    location_required = True

    def open(self, location, *, on_bad: str = "skip", lang: str | None = None):
        from compress.data.manifest import open_manifest

        _need_location("manifest", location)
        return open_manifest(location, on_bad=on_bad, lang=lang)


class ShardSource:
    """WebDataset-style tar shards; location: a .tar file, a folder of them, or a pattern."""

    location_required = True

    def open(self, location, *, on_bad: str = "skip", lang: str | None = None):
        from compress.data.shards import open_shards

        _need_location("shards", location)
        return open_shards(location, on_bad=on_bad, lang=lang)


def _need_location(name: str, location) -> None:
    if location is None or (isinstance(location, str) and not location.strip()):
        raise CompressError(f"{name} data needs a location, e.g. {{name: {name}, location: ...}} or '{name}:<path>'")
