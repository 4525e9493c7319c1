"""`compress export`: a trained student (run folder or student folder) to a bundle for phone apps."""

from __future__ import annotations

import json
from pathlib import Path

from compress.api import build_student
from compress.errors import CompressError

STUDENT_CONFIG = "student.json"
RUN_REPORT = "report.json"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a bundle (ExecuTorch .pte, Core ML .mlpackage, tokenizer, label embeddings, manifest)",
        description=(
            "Export a trained student to a bundle folder that the reference client and the phone apps load, "
            "and measure its parity with the PyTorch model (export_report.json in the bundle)."
        ),
    )
    p.add_argument("--checkpoint", required=True, help="a run folder (holding student/) or a saved student folder")
    p.add_argument("--out", required=True, help="the bundle folder to write")
    p.add_argument("--targets", default="executorch", help="comma-separated: executorch, coreml (default: executorch)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8 adds int8 .pte files (PT2E + XNNPACK) and int8-weight Core ML packages")
    p.add_argument("--labels", default="demo-shape,demo-color",
                   help="comma-separated label sets: demo-shape, demo-color, demo-color_shape, or an ELEVATER dataset name")
    p.add_argument("--calibration", default="demo:train", help="data spec of real training samples for int8 calibration")
    p.add_argument("--calibration-count", type=int, default=64, help="calibration samples (default: 64)")
    p.add_argument("--parity-count", type=int, default=32, help="held-out demo test samples for embedding parity (default: 32)")
    p.add_argument("--zero-shot-count", type=int, default=200, help="demo test images per label set for zero-shot top-1 (default: 200)")
    p.add_argument("--coreml-variants", help="comma-separated: fp16, int8-weights, palette6, palette4 (default: fp16, plus int8-weights with --quantize int8)")
    p.add_argument("--logit-scale", type=float, help="softmax scale of cosines (default: the run's learned value, else 100)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--strict", action="store_true", help="fail when a parity check fails")
    p.set_defaults(run=run)


def resolve_checkpoint(path: str | Path) -> tuple[Path, float | None]:
    """(student folder, learned logit scale or None) for a run folder or a student folder."""
    path = Path(path)
    if (path / STUDENT_CONFIG).is_file():
        student_dir, run_dir = path, path.parent
    elif (path / "student" / STUDENT_CONFIG).is_file():
        student_dir, run_dir = path / "student", path
    elif not path.exists():
        raise CompressError(f"{path}: no such run or student folder")
    else:
        raise CompressError(f"{path}: neither a student folder ({STUDENT_CONFIG}) nor a run folder (student/{STUDENT_CONFIG})")
    logit_scale = None
    report = run_dir / RUN_REPORT
    if report.is_file():
        try:
            value = json.loads(report.read_text(encoding="utf-8")).get("logit_scale")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise CompressError(f"{report}: unreadable run report ({exc})") from None
        logit_scale = float(value) if isinstance(value, (int, float)) else None
    return student_dir, logit_scale


def calibration_samples(spec, count: int) -> list:
    """`count` calibration samples spread evenly over the dataset `spec`."""
    from compress.api import open_data

    if count < 1:
        raise CompressError(f"--calibration-count must be at least 1, got {count}")
    from compress.data import spread_samples

    return spread_samples(open_data(spec), count, f"{spec} (calibration)")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def run(args) -> int:
    from compress.bundle import export_bundle

    student_dir, learned_scale = resolve_checkpoint(args.checkpoint)
    student = build_student(student_dir)
    targets = _split(args.targets)
    samples = calibration_samples(args.calibration, args.calibration_count) if args.quantize == "int8" else None
    export_bundle(
        student,
        args.out,
        targets=targets,
        quantize=args.quantize,
        label_sets=_split(args.labels),
        calibration_samples=samples,
        parity_count=args.parity_count,
        zero_shot_count=args.zero_shot_count,
        coreml_variants=_split(args.coreml_variants) or None,
        logit_scale=args.logit_scale if args.logit_scale is not None else learned_scale,
        source=str(student_dir),
        overwrite=args.overwrite,
        strict=args.strict,
    )
    return 0  # a failed parity check is printed in red; with --strict it is an error (exit 2)
