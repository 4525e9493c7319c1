"""`compress eval`: zero-shot classification and retrieval for teachers, students and bundles."""

from __future__ import annotations

from pathlib import Path

from compress.errors import CompressError

DEFAULT_OUT = "runs/eval"
DEMO_PREFIX = "demo:"
DEMO_COUNT = 500


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
        help="a teacher spec (demo, altclip:/folder, JSON), a student folder or a bundle folder; repeatable",
    )
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help=(
            "a dataset folder; NAME picks the shipped class names (e.g. cifar-10=/data/c10); "
            "or demo:shape, demo:color, demo:color_shape for the built-in demo world; repeatable"
        ),
    )
    p.add_argument(
        "--retrieval",
        action="append",
        default=[],
        metavar="MANIFEST",
        help="a JSONL manifest of (image, caption, lang) pairs, or 'demo' for demo-world pairs; repeatable",
    )
    p.add_argument("--lang", default="en,zh", help="comma-separated languages (default: en,zh)")
    p.add_argument("--split", default="test", help="ELEVATER split folder to evaluate (default: test)")
    p.add_argument("--classnames", action="append", default=[], metavar="LANG=FILE", help="class names, one a line")
    p.add_argument("--templates", action="append", default=[], metavar="LANG=FILE", help="prompt templates with {}")
    p.add_argument(
        "--limit",
        type=int,
        help=f"at most this many images per dataset, spread over classes (demo sets: default {DEMO_COUNT})",
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


def run(args) -> int:
    from compress.eval.datasets import demo_task_set, open_classification
    from compress.eval.models import model_label, resolve_model, unique_labels
    from compress.eval.report import write_eval_report
    from compress.eval.retrieval import demo_retrieval_set, open_retrieval
    from compress.eval.runner import evaluate_models

    langs = [lang.strip() for lang in args.lang.split(",") if lang.strip()]
    if not langs:
        raise CompressError("--lang names no language")
    if not args.dataset and not args.retrieval:
        raise CompressError("nothing to evaluate: give --dataset and/or --retrieval")
    if args.limit is not None and args.limit < 1:
        raise CompressError("--limit must be at least 1")
    classnames = parse_lang_files(args.classnames, "--classnames")
    templates = parse_lang_files(args.templates, "--templates")
    demo_count = args.limit or DEMO_COUNT
    datasets = []
    for value in args.dataset:
        if value.startswith(DEMO_PREFIX):
            datasets.append(demo_task_set(value[len(DEMO_PREFIX) :], count=demo_count))
            continue
        name, path = parse_dataset(value)
        datasets.append(
            open_classification(path, name=name, split=args.split, classnames=classnames, templates=templates)
        )
    for manifest in args.retrieval:
        is_demo = manifest == "demo" and not Path(manifest).exists()
        datasets.append(demo_retrieval_set(count=demo_count, langs=langs) if is_demo else open_retrieval(manifest))
    labels = unique_labels([model_label(spec) for spec in args.model])
    models = {label: resolve_model(spec) for label, spec in zip(labels, args.model)}
    results = evaluate_models(models, datasets, langs, batch_size=args.batch_size, limit=args.limit)
    written = write_eval_report(results, args.out)
    print(f"wrote {written['json']} and {len(written['charts'])} chart(s) to {Path(args.out)}")
    return 0
