"""`compress recipe NAME`: run a recipe with its default config, a user's config, and overrides."""

from __future__ import annotations

from compress.recipes import RECIPES, apply_overrides, load_config, run_recipe


def add_parser(sub) -> None:
    p = sub.add_parser("recipe", help="run a recipe end to end (e.g. dc_clip)")
    p.add_argument("recipe", choices=sorted(RECIPES), help="the recipe to run")
    p.add_argument("--config", help="a YAML config replacing the recipe's default one")
    p.add_argument(
        "--teacher",
        help="teacher spec: demo, altclip:/path/to/folder, or a mapping such as '{image: open-clip:/clip, text: mclip:/mclip}'",
    )
    p.add_argument(
        "--data",
        help="training data spec: demo, a .jsonl manifest (manifest:FILE), tar shards "
        "(shards:PATTERN) or a mapping such as '{name: demo, size: 2000}'",
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
        "earlier stages left in the run folder; stages: tokenizer, cache, distill, align, eval, "
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

    config = load_config(args.recipe, args.config)
    for key in ("teacher", "data", "name", "runs_dir"):
        value = getattr(args, key)
        if value is not None:
            config[key] = parse_text(value, f"--{key}") if key in ("teacher", "data") else value
    apply_overrides(config, args.overrides)
    run_recipe(args.recipe, config, resume=args.resume, stages=args.stages)
    return 0
