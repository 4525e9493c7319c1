"""Strict reading of a recipe config: every key must be known, every required key present.

A recipe declares its sections as `Section`s; `read_section` refuses an unknown key (naming it and
the valid ones) and a missing required key (naming it). Settings owned elsewhere (the Distiller's,
a student family's) are passed on whole and checked by their owner, so no default is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compress.errors import CompressError


@dataclass(frozen=True)
class Section:
    """The keys of one mapping in a config: those it must have and those it may have."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.required + self.optional))


def read_section(config: Any, section: Section, where: str) -> dict[str, Any]:
    """`config` as a dict after checking its keys against `section`; `where` names it in errors ("dc_clip config: eval")."""
    if not isinstance(config, Mapping):
        raise CompressError(f"{where}: expected a mapping of settings, not {type(config).__name__} {config!r}")
    unknown = sorted(str(key) for key in config if key not in section.keys)
    if unknown:
        raise CompressError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(section.keys)}")
    missing = [key for key in section.required if key not in config]
    if missing:
        raise CompressError(
            f"{where}: missing key(s) {', '.join(missing)} (every key of the shipped config is needed; "
            "copy it from compress/recipes/configs/)"
        )
    return dict(config)


def check_keys(config: Any, valid: list[str] | tuple[str, ...], where: str) -> dict[str, Any]:
    """A mapping whose keys are all in `valid` (an owner's settings, each optional: the owner has the defaults)."""
    return read_section(config, Section(required=(), optional=tuple(valid)), where)
