"""Recipes: readable end-to-end scripts, each with YAML presets that users copy and edit.

`python -m compress recipe dc_clip` runs `compress/recipes/dc_clip.py` with its default preset,
`configs/dc_clip.yaml` (demo); `--preset paper` picks `configs/dc_clip_paper.yaml`. Each preset
file names itself in its `preset` key, which the run folder records.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from compress.errors import CompressError

CONFIG_DIR = Path(__file__).parent / "configs"
RECIPES = {"dc_clip": "compress.recipes.dc_clip"}
# Each recipe's presets (name -> file in CONFIG_DIR); the first is the default.
PRESETS = {"dc_clip": {"demo": "dc_clip.yaml", "paper": "dc_clip_paper.yaml"}}
PRESET_KEY = "preset"  # the config key naming the preset a config is (or was copied from)


class RecipeConfig(dict):
    """A recipe's settings, remembering the file they were read from (for errors that name it)."""

    def __init__(self, settings: dict[str, Any], source: Path | None = None):
        super().__init__(settings)
        self.source = source


def config_source(config: dict[str, Any], recipe: str) -> str:
    """How errors name a config: "dc_clip config (path/to/file.yaml)", or "dc_clip config" for a plain dict."""
    source = getattr(config, "source", None)
    return f"{recipe} config ({source})" if source is not None else f"{recipe} config"


def preset_names(recipe: str) -> list[str]:
    """The recipe's presets, the default first."""
    _check_recipe(recipe)
    return list(PRESETS.get(recipe, {}))


def preset_path(recipe: str, preset: str | None = None) -> Path:
    """The file of a preset (None: the default one); an unknown name is an error listing the known ones."""
    names = preset_names(recipe)
    preset = names[0] if preset is None else preset
    if preset not in names:
        raise CompressError(f"unknown preset {preset!r} for recipe {recipe}; presets: {', '.join(names)}")
    return CONFIG_DIR / PRESETS[recipe][preset]


def load_config(recipe: str, path: str | Path | None = None, preset: str | None = None) -> RecipeConfig:
    """A preset of the recipe (the default one unless `preset` names another), or a user's YAML file.

    A user's file replaces the presets whole, so `path` and `preset` together are refused.
    """
    _check_recipe(recipe)
    if path is not None and preset is not None:
        raise CompressError(
            f"--config {path} and --preset {preset} both given: a config file replaces the presets whole. "
            f"Copy {preset_path(recipe, preset)} and edit it, or give the preset with --set overrides"
        )
    config = _read_yaml(Path(path) if path is not None else preset_path(recipe, preset))
    if path is None:
        name = preset or preset_names(recipe)[0]
        if config.get(PRESET_KEY) != name:
            raise CompressError(f"{config.source}: the {name} preset's file says {PRESET_KEY}: {config.get(PRESET_KEY)!r}")
    return config


def _check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise CompressError(f"unknown recipe {recipe!r}; available: {', '.join(sorted(RECIPES))}")


def _read_yaml(path: Path) -> RecipeConfig:
    if not path.is_file():
        raise CompressError(f"{path}: no such config file")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CompressError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise CompressError(f"{path}: a recipe config is a mapping of settings")
    return RecipeConfig(config, source=path)


def parse_inline(value: str):
    """A command-line spec: `compress.specs.parse_text` (a plain string, or inline YAML/JSON such as "{image: a, text: b}")."""
    from compress.specs import parse_text

    return parse_text(value)


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply "dotted.key=value" overrides; the value is parsed as YAML ("3" -> 3, "[a, b]" -> list)."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise CompressError(f"override {override!r} is not key=value")
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CompressError(f"override {override!r}: {part!r} is not a section")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise CompressError(f"override {override!r}: value is not valid YAML ({str(exc).splitlines()[0]})") from None
    return config


def run_recipe(recipe: str, config: dict[str, Any], resume: bool = False, stages: str | None = None) -> dict[str, Any]:
    """Run `recipe`: every stage, or the comma-separated `stages` (e.g. "eval,export"); `resume` skips finished stages."""
    module = importlib.import_module(RECIPES[recipe])
    return module.run(config, resume=resume, stages=stages)
