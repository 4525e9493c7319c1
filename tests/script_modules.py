"""Scripts that are not importable packages (bench/, examples/python/, a library's loose file), loaded as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, name: str) -> ModuleType:
    """The module in `path` (relative to the repository root, or absolute), registered in sys.modules
    as `name` so that its dataclasses and pickles can look their module up."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
