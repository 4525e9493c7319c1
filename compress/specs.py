"""Parsing of plugin specs: "name", "name:location", or a dict with a "name" key."""

from __future__ import annotations

from typing import Any

from compress.errors import CompressError


def parse_spec(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split a spec into a plugin name and keyword options.

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
