"""QAT against post-training int8: the dc_clip recipe twice on the demo, side by side.

    python bench/qat.py                                   # the shipped demo config
    python bench/qat.py --distill-steps 150 --align-steps 40 --demo-count 200 --threads 1

Both runs use the shipped dc_clip config (demo teacher, demo world, its student and settings) with
the same seed, so stage 1 is the same computation; they differ only in `distill.qat`. The PTQ run
aligns in fp32 and its bundle quantizes the student after training (int8, calibrated on training
samples); the QAT run aligns under int8 fake quantization (compress.quant.prepare_qat) and its
bundle quantizes the QAT-trained student the same way. Each bundle's int8 ExecuTorch models are
evaluated as an app runs them (the recipe's bundle_eval stage). The table shows zero-shot top-1
per task and language: the fp32 student of each run and the int8 bundle of each run.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from compress import quiet
from compress.recipes import apply_overrides, load_config, run_recipe
from compress.specs import parse_text


def run_variant(name: str, runs_dir: Path, args, qat: bool) -> dict:
    config = load_config("dc_clip")
    overrides = [
        f"name={name}",
        f"runs_dir={runs_dir}",
        f"distill.qat={str(qat).lower()}",
        "export.targets=[executorch]",
        "export.quantize=int8",
        f"export.calibration_count={args.calibration_count}",
    ]
    if args.distill_steps:
        overrides.append(f"distill.steps.distill={args.distill_steps}")
    if args.align_steps:
        overrides.append(f"distill.steps.align={args.align_steps}")
    if args.demo_count:
        overrides.append(f"eval.demo_count={args.demo_count}")
    if args.device:
        overrides.append(f"distill.device={args.device}")
    config = apply_overrides(config, overrides + list(args.overrides))
    for key in ("teacher", "data"):
        if getattr(args, key):
            config[key] = parse_text(getattr(args, key), f"--{key}")
    # The recipe builds the student from the global random stream; the same state before each run
    # gives both runs the same initial student, so stage 1 is the same computation in both.
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    started = time.perf_counter()
    report = run_recipe("dc_clip", config)
    report["bench_seconds"] = time.perf_counter() - started
    return report


def comparison_table(ptq: dict, qat: dict, languages: list[str]) -> Table:
    table = Table(title="zero-shot top-1 on the demo: fp32 student, int8 bundle after PTQ, int8 bundle after QAT")
    for column in ("task", "lang", "fp32 (PTQ run)", "int8 PTQ", "fp32 (QAT run)", "int8 QAT"):
        table.add_column(column, justify="left" if column in ("task", "lang") else "right")
    for task in ptq["zero_shot_top1"]["student"]:
        for lang in languages:
            cells = [
                ptq["zero_shot_top1"]["student"][task][lang],
                ptq["bundle_zero_shot_top1"][task][lang],
                qat["zero_shot_top1"]["student"][task][lang],
                qat["bundle_zero_shot_top1"][task][lang],
            ]
            table.add_row(task, lang, *(f"{100 * value:.1f}%" for value in cells))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distill-steps", type=int, help="stage-1 steps (default: the shipped config's)")
    parser.add_argument("--align-steps", type=int, help="stage-2 steps (default: the shipped config's)")
    parser.add_argument("--demo-count", type=int, help="images per demo evaluation task (default: the config's)")
    parser.add_argument("--calibration-count", type=int, default=256, help="int8 calibration samples (256)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--device", help="training device (default: the config's, auto)")
    parser.add_argument("--teacher", help="teacher spec (default: the config's, the demo teacher)")
    parser.add_argument("--data", help="training data spec (default: the config's, demo:train)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other recipe setting, as `compress recipe --set` (repeatable)",
    )
    parser.add_argument("--out", help="folder for the two run folders (default: a temporary one)")
    parser.add_argument("--json", help="write both reports' scores here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-qat-"))
    ptq = run_variant("ptq", runs_dir, args, qat=False)
    qat = run_variant("qat", runs_dir, args, qat=True)
    languages = list(load_config("dc_clip")["eval"]["languages"])
    console = Console()
    console.print(comparison_table(ptq, qat, languages))
    same = ptq["stages"]["distill"]["final_loss"] == qat["stages"]["distill"]["final_loss"]
    console.print(
        f"stage 1 {'identical' if same else 'DIFFERENT'} in both runs (final loss "
        f"{ptq['stages']['distill']['final_loss']:.4f} / {qat['stages']['distill']['final_loss']:.4f}); "
        f"stage 2 seconds: PTQ {ptq['stages']['align']['seconds']:.0f}, QAT {qat['stages']['align']['seconds']:.0f}"
    )
    console.print(
        f"seconds: PTQ run {ptq['bench_seconds']:.0f}, QAT run {qat['bench_seconds']:.0f}; "
        f"{torch.get_num_threads()} torch thread(s); run folders in {runs_dir}"
    )
    if args.json:
        keys = ("zero_shot_top1", "bundle_zero_shot_top1", "bench_seconds")
        Path(args.json).write_text(
            json.dumps({"ptq": {k: ptq[k] for k in keys}, "qat": {k: qat[k] for k in keys}}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        raise SystemExit(main())
