"""`python -m compress` and the `compress` console script."""

from __future__ import annotations

import argparse
import importlib
import sys

from compress import quiet
from compress.errors import CompressError

COMMANDS = ["recipe", "plugins", "eval", "cache", "export", "predict", "search"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compress",
        description="Compress bilingual (Chinese + English) CLIP models into small models that run on phones.",
    )
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"show every third-party warning and native library message (also {quiet.VERBOSE_ENV}=1); "
        "by default the known-benign ones are filtered",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"compress.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with quiet.installed(verbose=True if args.verbose else None):
            return int(args.run(args) or 0)
    except CompressError as exc:
        if args.traceback:
            raise
        print(f"compress {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"compress {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
