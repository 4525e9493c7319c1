"""`compress eval`: zero-shot classification and retrieval for teachers, students and bundles."""

from __future__ import annotations

from pathlib import Path

from compress.errors import CompressError

DEFAULT_OUT = "runs/eval"
SOURCE_COUNT = 500  # images of a data source's in-memory task or retrieval set unless --limit says otherwise


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="zero-shot classification (ELEVATER / ImageFolder) and image-text retrieval, in English and Chinese",
        description=(
            "Evaluate one or more models on dataset folders (ELEVATER layout with label.txt / label_cn.txt "
            "and test/<class id>/, or ImageFolder) and JSONL retrieval manifests. Writes eval.json and a "
            "PNG chart per dataset and language."
        ),
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="SPEC",
        help="a teacher spec (demo, altclip:/folder, '{image: a, text: b}'), a student or bundle folder "
        "(local-dir:FOLDER, or the folder's path); repeatable",
    )
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help=(
            "a dataset folder; NAME picks the shipped class names (e.g. cifar-10=/data/c10); "
            "or SOURCE:TASK for a data source's zero-shot task (demo:shape, demo:color, demo:color_shape); repeatable"
        ),
    )
    p.add_argument(
        "--retrieval",
        action="append",
        default=[],
        metavar="MANIFEST",
        help="a JSONL manifest of (image, caption, lang) pairs, or a data source's pairs (demo); repeatable",
    )
    p.add_argument("--lang", default="en,zh", help="comma-separated languages (default: en,zh)")
    p.add_argument("--split", default="test", help="ELEVATER split folder to evaluate (default: test)")
    p.add_argument("--classnames", action="append", default=[], metavar="LANG=FILE", help="class names, one a line")
    p.add_argument("--templates", action="append", default=[], metavar="LANG=FILE", help="prompt templates with {}")
    p.add_argument(
        "--limit",
        type=int,
        help=f"at most this many images per dataset, spread over classes (data-source sets: default {SOURCE_COUNT})",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default: {DEFAULT_OUT})")
    p.set_defaults(run=run)


def parse_lang_files(values: list[str], option: str) -> dict[str, Path]:
    files = {}
    for value in values:
        lang, sep, path = value.partition("=")
        if not sep or not lang or not path:
            raise CompressError(f"{option} {value!r}: expected LANG=FILE, e.g. zh=classnames_zh.txt")
        files[lang.strip()] = Path(path).expanduser()
    return files


def parse_dataset(value: str) -> tuple[str | None, Path]:
    name, sep, path = value.partition("=")
    if sep and name and "/" not in name and not Path(value).exists():
        return name, Path(path).expanduser()
    return None, Path(value).expanduser()


def source_task(value: str) -> tuple[str, str] | None:
    """(source, task) for "SOURCE:TASK" naming a registered data source with zero-shot tasks, else None."""
    from compress.data.sources import sources_with_tasks

    source, sep, task = value.partition(":")
    if not sep or not task or Path(value).exists() or source not in sources_with_tasks():
        return None
    return source, task


def retrieval_source(value: str) -> str | None:
    """The data source a --retrieval value names ("demo"), or None for a manifest path."""
    from compress.data.sources import source_names

    return value if value in source_names() and not Path(value).exists() else None


def run(args) -> int:
    from compress.api import load_model
    from compress.eval.datasets import open_classification, task_set
    from compress.eval.models import model_label, unique_labels
    from compress.eval.report import write_eval_report
    from compress.eval.retrieval import open_retrieval, source_retrieval_set
    from compress.eval.runner import evaluate_models
    from compress.specs import parse_text

    langs = [lang.strip() for lang in args.lang.split(",") if lang.strip()]
    if not langs:
        raise CompressError("--lang names no language")
    if not args.dataset and not args.retrieval:
        raise CompressError("nothing to evaluate: give --dataset and/or --retrieval")
    if args.limit is not None and args.limit < 1:
        raise CompressError("--limit must be at least 1")
    classnames = parse_lang_files(args.classnames, "--classnames")
    templates = parse_lang_files(args.templates, "--templates")
    source_count = args.limit or SOURCE_COUNT
    datasets = []
    for value in args.dataset:
        named = source_task(value)
        if named is not None:
            datasets.append(task_set(*named, count=source_count))
            continue
        name, path = parse_dataset(value)
        datasets.append(open_classification(path, name=name, split=args.split, classnames=classnames, templates=templates))
    for manifest in args.retrieval:
        source = retrieval_source(manifest)
        datasets.append(source_retrieval_set(source, count=source_count, langs=langs) if source else open_retrieval(manifest))
    labels = unique_labels([model_label(spec) for spec in args.model])
    models = {label: load_model(parse_text(spec, "--model")) for label, spec in zip(labels, args.model)}
    results = evaluate_models(models, datasets, langs, batch_size=args.batch_size, limit=args.limit)
    written = write_eval_report(results, args.out)
    print(f"wrote {written['json']} and {len(written['charts'])} chart(s) to {Path(args.out)}")
    return 0
