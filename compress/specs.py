"""The one spec grammar of every command and API entry: teachers, students, data and evaluated models.

Command-line text becomes a spec through `parse_text`: an inline YAML flow mapping or list (which
JSON also is), e.g. ``{image: altclip, text: mclip}``, or else the plain string. A plugin spec is
then one of::

    "name"                      a registered plugin with its defaults
    "name:location"             the plugin with a location (a folder, a model id, a split)
    {"name": ..., **options}    the plugin with keyword options
    {"image": spec, "text": spec}                  a composed teacher (either side may be absent)
    {"ensemble": [spec, ...], "weights": [...]}    an ensemble teacher

Where a string could be a name or a path, a prefix says which, as timm's ``hf-hub:`` does:
``local-dir:<folder>`` (a saved student, a bundle), ``manifest:<file>``, ``shards:<pattern>``,
``demo:<split>`` (any registered data source: ``<source>:<location>``). Unprefixed paths keep
working where they are unambiguous: an existing folder, a ``.jsonl`` file, ``.tar`` shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compress.errors import CompressError, UnknownPluginError

LOCAL_DIR = "local-dir:"
IMAGE_TEXT = "image-text"
ENSEMBLE = "ensemble"
PLUGIN = "plugin"


def parse_text(text: str, what: str = "spec"):
    """A spec from command-line text: an inline YAML (or JSON) mapping or list, or the plain string.

    >>> parse_text("{image: altclip, text: mclip}")
    {'image': 'altclip', 'text': 'mclip'}
    >>> parse_text('{"name": "demo", "steps": 50}')
    {'name': 'demo', 'steps': 50}
    >>> parse_text("altclip:/models/altclip")
    'altclip:/models/altclip'
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise CompressError(f"{what} {stripped!r} is not a valid YAML or JSON mapping/list ({reason})") from None
    if not isinstance(value, (dict, list)):
        raise CompressError(f"{what} {stripped!r} is not a mapping or a list")
    return value


def parse_spec(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split a plugin spec into a plugin name and keyword options.

    >>> parse_spec("altclip:/models/altclip")
    ('altclip', {'location': '/models/altclip'})
    >>> parse_spec({"name": "open-clip", "location": "ViT-B-16", "pretrained": "openai"})
    ('open-clip', {'location': 'ViT-B-16', 'pretrained': 'openai'})
    """
    if isinstance(spec, str):
        if not spec.strip():
            raise CompressError("empty spec")
        name, sep, location = spec.partition(":")
        return name.strip(), ({"location": location} if sep and location else {})
    if isinstance(spec, dict):
        if "name" not in spec:
            raise CompressError(f"spec dict needs a 'name' key: {spec!r}")
        options = dict(spec)
        return str(options.pop("name")), options
    raise CompressError(f"a spec is a string or a dict, not {type(spec).__name__}")


@dataclass(frozen=True)
class TeacherSpec:
    """A parsed teacher spec: one plugin (`name`, `options`), an image-text pair, or an ensemble."""

    kind: str
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)  # image-text: {"image": spec|None, "text": spec|None}
    members: list[Any] = field(default_factory=list)  # ensemble member specs
    weights: list[float] | None = None


def teacher_spec(spec) -> TeacherSpec:
    """The structure of a teacher spec (its members are left as specs, parsed when loaded)."""
    if isinstance(spec, dict) and "name" not in spec and ("image" in spec or "text" in spec):
        unknown = sorted(set(spec) - {"image", "text"})
        if unknown:
            raise CompressError(f"composed teacher spec {spec!r}: unknown key(s) {', '.join(unknown)}; keys: image, text")
        return TeacherSpec(IMAGE_TEXT, parts={"image": spec.get("image"), "text": spec.get("text")})
    if isinstance(spec, dict) and "name" not in spec and ENSEMBLE in spec:
        unknown = sorted(set(spec) - {ENSEMBLE, "weights"})
        if unknown:
            raise CompressError(f"ensemble teacher spec {spec!r}: unknown key(s) {', '.join(unknown)}; keys: ensemble, weights")
        members = spec[ENSEMBLE]
        if not isinstance(members, list):
            raise CompressError(f"ensemble teacher spec {spec!r}: 'ensemble' is a list of teacher specs")
        return TeacherSpec(ENSEMBLE, members=list(members), weights=spec.get("weights"))
    if isinstance(spec, list):
        raise CompressError(f"a teacher spec is a name, a mapping or an ensemble, not a list {spec!r}")
    name, options = parse_spec(spec)
    return TeacherSpec(PLUGIN, name=name, options=options)


def with_options(spec, **options):
    """A teacher spec with extra options (e.g. a device) on its teacher, or on every part of a composed one."""
    parsed = teacher_spec(spec)
    if parsed.kind == IMAGE_TEXT:
        return {side: None if part is None else with_options(part, **options) for side, part in parsed.parts.items()}
    if parsed.kind == ENSEMBLE:
        composed: dict[str, Any] = {ENSEMBLE: [with_options(member, **options) for member in parsed.members]}
        if parsed.weights is not None:
            composed["weights"] = parsed.weights
        return composed
    return {"name": parsed.name, **parsed.options, **options}


def local_dir(spec) -> Path | None:
    """The folder a spec names: "local-dir:<folder>" (which must exist), an existing folder, or None."""
    if isinstance(spec, Path):
        text = str(spec)
    elif isinstance(spec, str):
        text = spec.strip()
    else:
        return None
    if text.startswith(LOCAL_DIR):
        folder = Path(text[len(LOCAL_DIR) :]).expanduser()
        if not folder.is_dir():
            raise CompressError(f"{folder}: no such folder")
        return folder
    folder = Path(text).expanduser()
    return folder if text and folder.is_dir() else None


def looks_like_path(text: str) -> bool:
    """True for text that can only be a path (it has a slash, or starts with "." or "~") and no plugin prefix."""
    return ":" not in text and ("/" in text or text.startswith((".", "~")))


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: the registered data source, its location and its options."""

    source: str
    location: Any
    options: dict[str, Any]


def data_spec(spec, sources: list[str], options: dict[str, Any] | None = None, bare: list[str] | None = None) -> DataSpec:
    """Which of the registered data `sources` a (non-list) data spec names, with location and options.

    "<source>:<location>" for a registered source, or "<source>" alone for one of `bare` (the sources
    that open without a location, like "demo"); {"name": source, "location": ..., **options};
    otherwise a path: a .jsonl file is a manifest, a .tar file, a folder or a pattern with * ? [ { is shards.
    """
    options = dict(options or {})
    if isinstance(spec, dict):
        name = spec.get("name")
        if not isinstance(name, str):
            raise CompressError(f"data spec {spec!r} needs a 'name' of a data source: {', '.join(sorted(sources))}")
        if name not in sources:
            raise UnknownPluginError("data source", name, list(sources))
        merged = {key: value for key, value in spec.items() if key not in ("name", "location")}
        merged.update(options)
        return DataSpec(name, spec.get("location"), merged)
    if isinstance(spec, Path):
        return DataSpec(_kind_of_path(spec), spec, options)
    if not isinstance(spec, str):
        raise CompressError(f"a data spec is a string, path, dict or list, not {type(spec).__name__}")
    if not spec.strip():
        raise CompressError("an empty data spec")
    name, sep, location = spec.partition(":")
    if name in sources and sep and location:
        return DataSpec(name, location, options)
    if name in sources and (name in (sources if bare is None else bare) or sep):
        return DataSpec(name, None, options)
    if any(char in spec for char in "*?[{") and not Path(spec).expanduser().exists():
        return DataSpec("shards", spec, options)
    return DataSpec(_kind_of_path(Path(spec)), spec, options)


def _kind_of_path(path: Path) -> str:
    path = path.expanduser()
    if path.is_dir():
        return "shards"
    if not path.exists():
        raise CompressError(f"{path}: no such file or folder (expected a .jsonl manifest, .tar shards or a data source name)")
    if path.suffix.lower() == ".jsonl":
        return "manifest"
    if path.suffix.lower() == ".tar":
        return "shards"
    raise CompressError(f"{path}: not a data source (expected a .jsonl manifest, a .tar shard or a folder of shards)")
