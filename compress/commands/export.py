"""`compress export`: a trained student (run folder or student folder) to a bundle for phone apps."""

from __future__ import annotations

import json
from pathlib import Path

from compress.api import STUDENT_CONFIG, build_student
from compress.errors import CompressError


def add_parser(sub) -> None:
    from compress.bundle import settings as S

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
    p.add_argument(
        "--targets",
        default=",".join(S.DEFAULT_TARGETS),
        help=f"comma-separated registered targets: executorch, coreml, or a plugin's (default: {','.join(S.DEFAULT_TARGETS)})",
    )
    p.add_argument(
        "--quantize",
        choices=S.QUANTIZE,
        default="none",
        help="int8 adds int8 .pte files (PT2E + XNNPACK) and int8-weight Core ML packages",
    )
    p.add_argument(
        "--labels",
        default=",".join(S.DEFAULT_LABEL_SETS),
        help="comma-separated label sets: demo-shape, demo-color, demo-color_shape, or an ELEVATER dataset name",
    )
    p.add_argument(
        "--calibration", default=S.DEFAULT_CALIBRATION_DATA, help="data spec of real training samples for int8 calibration"
    )
    p.add_argument(
        "--calibration-count",
        type=int,
        default=S.DEFAULT_CALIBRATION_COUNT,
        help=f"calibration samples (default: {S.DEFAULT_CALIBRATION_COUNT})",
    )
    p.add_argument(
        "--parity-data",
        default=S.DEFAULT_PARITY_DATA,
        help=f"data spec of held-out samples for embedding parity (default: {S.DEFAULT_PARITY_DATA})",
    )
    p.add_argument(
        "--parity-count",
        type=int,
        default=S.DEFAULT_PARITY_COUNT,
        help=f"held-out samples for embedding parity (default: {S.DEFAULT_PARITY_COUNT})",
    )
    p.add_argument(
        "--zero-shot-count",
        type=int,
        default=S.DEFAULT_ZERO_SHOT_COUNT,
        help=f"test images per label set for zero-shot top-1 (default: {S.DEFAULT_ZERO_SHOT_COUNT})",
    )
    p.add_argument(
        "--coreml-variants",
        help="comma-separated: fp16, int8-weights, palette6, palette4 (default: fp16, plus int8-weights with --quantize int8)",
    )
    p.add_argument(
        "--logit-scale",
        type=float,
        help=f"softmax scale of cosines (default: the run's learned value, else {S.DEFAULT_LOGIT_SCALE:g})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=S.DEFAULT_WORKERS,
        help=f"processes exporting the towers at once (default: {S.DEFAULT_WORKERS}, in this process)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--strict", action="store_true", help="fail when a parity check fails")
    p.set_defaults(run=run)


def resolve_checkpoint(path: str | Path) -> tuple[Path, float | None]:
    """(student folder, learned logit scale or None) for a run folder or a student folder."""
    from compress.distill.report import REPORT_FILE, STUDENT_DIR

    path = Path(path)
    if (path / STUDENT_CONFIG).is_file():
        student_dir, run_dir = path, path.parent
    elif (path / STUDENT_DIR / STUDENT_CONFIG).is_file():
        student_dir, run_dir = path / STUDENT_DIR, path
    elif not path.exists():
        raise CompressError(f"{path}: no such run or student folder")
    else:
        raise CompressError(f"{path}: neither a student folder ({STUDENT_CONFIG}) nor a run folder (student/{STUDENT_CONFIG})")
    logit_scale = None
    report = run_dir / REPORT_FILE
    if report.is_file():
        try:
            value = json.loads(report.read_text(encoding="utf-8")).get("logit_scale")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise CompressError(f"{report}: unreadable run report ({exc})") from None
        logit_scale = float(value) if isinstance(value, (int, float)) else None
    return student_dir, logit_scale


def spread_data(spec, count: int, what: str, option: str) -> list:
    """`count` samples spread evenly over the dataset `spec`."""
    from compress.api import open_data
    from compress.data import spread_samples
    from compress.specs import parse_text

    if count < 1:
        raise CompressError(f"{option} must be at least 1, got {count}")
    return spread_samples(open_data(parse_text(spec, "data spec")), count, f"{spec} ({what})")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def run(args) -> int:
    from compress.bundle import ExportSettings, export_bundle

    student_dir, learned_scale = resolve_checkpoint(args.checkpoint)
    variants = _split(args.coreml_variants)
    settings = ExportSettings(
        targets=tuple(_split(args.targets)),
        quantize=args.quantize,
        label_sets=tuple(_split(args.labels)),
        precisions={"coreml": tuple(variants)} if variants else {},
        parity_count=args.parity_count,
        zero_shot_count=args.zero_shot_count,
        logit_scale=args.logit_scale if args.logit_scale is not None else learned_scale,
        overwrite=args.overwrite,
        workers=args.workers,
        strict=args.strict,
    )
    student = build_student(student_dir)
    calibration = (
        spread_data(args.calibration, args.calibration_count, "calibration", "--calibration-count")
        if args.quantize == "int8"
        else None
    )
    parity = spread_data(args.parity_data, args.parity_count, "parity", "--parity-count")
    export_bundle(student, args.out, settings, calibration_samples=calibration, parity_samples=parity, source=str(student_dir))
    return 0  # a failed parity check is printed in red; with --strict it is an error (exit 2)
