"""Packages whose public names are imported on first use, so that importing the package (and
building the command line) does not pull in torch, executorch or matplotlib."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, whose name `n` lives in its submodule `homes[n]`.

    Use in the package's `__init__.py`: `__getattr__, __dir__ = lazy_exports(__name__, HOMES)`.
    A name is imported from its submodule on first access and then kept in the package.
    """

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
