"""`compress plugins`: every installed plugin with a one-line description."""

from __future__ import annotations

from rich.table import Table

from compress import registry
from compress.console import make_console


def add_parser(sub) -> None:
    p = sub.add_parser("plugins", help="list installed teachers, students, targets, losses and data sources")
    p.add_argument("--kind", choices=sorted(registry.GROUPS), help="only this kind")
    p.set_defaults(run=run)


def run(args) -> int:
    table = Table(title="compress plugins")
    for column in ("kind", "name", "from", "description"):
        table.add_column(column)
    for kind in [args.kind] if args.kind else registry.GROUPS:
        for name, dist, summary in registry.describe(kind):
            table.add_row(kind, name, dist, summary)
    make_console().print(table)
    return 0
