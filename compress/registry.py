"""Plugin registry on entry points.

First-party plugins register in pyproject.toml exactly as a third-party package would, under the
groups below; `compress.registry.get("teachers", "altclip")` loads one by name. Data sources
(`compress.data`: manifest, shards, demo) are plugins too, so a new data format is a package away.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from compress.errors import UnknownPluginError

GROUPS = {
    "teachers": "compress.teachers",
    "students": "compress.students",
    "targets": "compress.targets",
    "losses": "compress.losses",
    "data": "compress.data",
}


def label(kind: str) -> str:
    """The singular a message uses: "teacher", "target", "data source"."""
    _group(kind)
    return "data source" if kind == "data" else kind[:-1] if kind.endswith("s") else kind


def _group(kind: str) -> str:
    try:
        return GROUPS[kind]
    except KeyError:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(GROUPS)}") from None


def entry_points_of(kind: str) -> dict[str, EntryPoint]:
    """Every installed plugin of one kind, by name (a later distribution overrides an earlier one)."""
    return {ep.name: ep for ep in entry_points(group=_group(kind))}


def names(kind: str) -> list[str]:
    return sorted(entry_points_of(kind))


def get(kind: str, name: str):
    """The object a plugin's entry point names (a factory function or a class)."""
    found = entry_points_of(kind)
    if name not in found:
        raise UnknownPluginError(label(kind), name, list(found))
    return found[name].load()


def describe(kind: str) -> list[tuple[str, str, str]]:
    """(name, distribution, one-line description) for each plugin of a kind."""
    rows = []
    for name, ep in sorted(entry_points_of(kind).items()):
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            doc = (ep.load().__doc__ or "").strip().splitlines()
            summary = doc[0] if doc else ""
        except Exception as exc:  # a broken third-party plugin must not hide the others
            summary = f"failed to load: {type(exc).__name__}: {exc}"
        rows.append((name, dist, summary))
    return rows
