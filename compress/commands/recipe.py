"""`compress recipe NAME`: run a recipe with one of its presets or a user's config, and overrides."""

from __future__ import annotations

from typing import Any

from compress.recipes import PRESETS, RECIPES, apply_overrides, load_config, run_recipe


def add_parser(sub) -> None:
    p = sub.add_parser("recipe", help="run a recipe end to end (e.g. dc_clip)")
    p.add_argument("recipe", choices=sorted(RECIPES), help="the recipe to run")
    presets = sorted({name for names in PRESETS.values() for name in names})
    p.add_argument(
        "--preset",
        metavar="NAME",
        help=f"the recipe's settings to start from ({', '.join(presets)}; default: the first, demo); "
        "recorded in the run folder, so --resume continues only with the same preset",
    )
    p.add_argument("--config", help="a YAML config replacing the presets whole (copy one from compress/recipes/configs/)")
    p.add_argument(
        "--teacher",
        help="teacher spec: demo, altclip:/path/to/folder, or a mapping such as '{image: open-clip:/clip, text: mclip:/mclip}'; "
        "'name:location' naming the config's own teacher plugin changes only its location and keeps its "
        "options (device, dtype, batch size)",
    )
    p.add_argument(
        "--data",
        help="training data spec: demo, a .jsonl manifest (manifest:FILE), tar shards "
        "(shards:PATTERN) or a mapping such as '{name: demo, size: 2000}'",
    )
    p.add_argument(
        "--val-data", help="held-out pairs (a data spec like --data) for the validation loss and the bundle's parity checks"
    )
    p.add_argument("--name", help="run name; the run folder is runs/<name>")
    p.add_argument("--runs-dir", help="folder holding run folders (default: runs)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run: skip its finished stages, continue an interrupted one from its checkpoint",
    )
    p.add_argument(
        "--stages",
        metavar="NAMES",
        help="run only these stages, comma-separated (e.g. distill,align,eval,export), reusing what "
        "earlier stages left in the run folder; stages: search, tokenizer, cache, distill, align, eval, "
        "export, bundle_eval",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config setting, e.g. --set distill.batch_size=32 (repeatable)",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    from compress.specs import parse_text

    config = load_config(args.recipe, args.config, args.preset)
    if args.teacher is not None:
        config["teacher"] = replace_teacher(config.get("teacher"), parse_text(args.teacher, "--teacher"))
    for key in ("data", "val_data", "name", "runs_dir"):
        value = getattr(args, key)
        if value is not None:
            config[key] = parse_text(value, f"--{key.replace('_', '-')}") if key in ("data", "val_data") else value
    apply_overrides(config, args.overrides)
    run_recipe(args.recipe, config, resume=args.resume, stages=args.stages)
    return 0


def replace_teacher(configured: Any, given: Any) -> Any:
    """The teacher `--teacher` asks for. A "name:location" (or bare "name") string naming the plugin of
    the config's own teacher mapping keeps that mapping's options (the paper preset's device, dtype and
    batch size) and changes only the location; anything else replaces the config's teacher whole."""
    from compress.specs import parse_spec

    if not isinstance(given, str) or not isinstance(configured, dict) or "name" not in configured:
        return given
    name, options = parse_spec(given)
    if name != configured["name"]:
        return given
    return {**configured, **options}
