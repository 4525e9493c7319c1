"""`compress predict`: classify one picture with a bundle's ExecuTorch image model and its label embeddings."""

from __future__ import annotations

import json

from rich.table import Table

from compress.console import make_console


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify a picture with a bundle (ExecuTorch runtime, precomputed label embeddings)",
        description="Top classes of one picture: bundle image model, cosine to the label set's embeddings, "
        "softmax with the bundle's logit scale.",
    )
    p.add_argument("--bundle", required=True, help="a bundle folder written by `compress export`")
    p.add_argument("--image", required=True, help="a picture file")
    p.add_argument("--labels", required=True, help="a label set in the bundle (see its manifest.json)")
    p.add_argument("--lang", default="en", help="label language: en or zh (default: en)")
    p.add_argument("--top", type=int, default=5, help="how many classes to show (default: 5)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="which .pte files to run (default: fp32)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(run=run)


def predict(bundle: str, image: str, labels: str, lang: str = "en", top: int = 5, precision: str = "fp32") -> list[dict]:
    """Rows of rank, class, index, probability and cosine, best first."""
    from compress.bundle import BundleEncoder
    from compress.data import load_image
    from compress.errors import CompressError

    if top < 1:
        raise CompressError(f"--top must be at least 1, got {top}")
    encoder = BundleEncoder(bundle, precision=precision)
    return encoder.classify(load_image(image), labels, lang, top=top)


def run(args) -> int:
    rows = predict(args.bundle, args.image, args.labels, args.lang, args.top, args.precision)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    table = Table(title=f"{args.image}: {args.labels} ({args.lang}, {args.precision})")
    for column in ("rank", "class", "probability", "cosine"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in rows:
        table.add_row(str(row["rank"]), row["class"], f"{row['probability']:.1%}", f"{row['cosine']:.4f}")
    make_console().print(table)
    return 0
