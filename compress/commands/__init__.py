"""One module per sub-command; each defines `add_parser(subparsers)` and `run(args) -> int`."""
