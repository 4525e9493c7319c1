"""The image tower's training step on NCHW pixels against channels-last pixels (`DistillConfig.channels_last`).

    python bench/memory_format.py                               # the dc_clip preset's image tower, batches 32 and 64
    python bench/memory_format.py --batch-sizes 32 --rounds 6 --threads 1 --json out.json

One step is what the Distiller does to the image tower: a forward, a loss, a backward and an AdamW
step, from the same weights in both layouts. The two layouts run interleaved in one process (NCHW
then channels-last, then the other way round in the next round, ...), each round from a fresh copy
of the same initial weights, so the machine's drift falls on both; the warm-up rounds first are not
counted. The table gives the median milliseconds per step over the rounds and their ratio, and the
largest difference between the two layouts' first outputs (the same computation in another order
of memory, so a few 1e-5 at most).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from compress import build_student, quiet
from compress.errors import CompressError
from compress.recipes import load_config
from compress.search.measure import machine_description

LAYOUTS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}


def preset_student_spec() -> dict:
    """The student `python -m compress recipe dc_clip` trains, as a `build_student` spec."""
    return dict(load_config("dc_clip")["student"])


def timed_steps(tower: torch.nn.Module, pixels: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    """Seconds per step of `steps` training steps on `pixels` (in the layout it is given), and the first output."""
    optimizer = torch.optim.AdamW(tower.parameters(), lr=1e-3)
    tower.train()
    first = None
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        out = tower(pixels)
        if first is None:
            first = out.detach().clone()
        out.square().mean().backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps, first


def measure(spec: dict, batch_size: int, steps: int, rounds: int, warmup: int) -> dict:
    torch.manual_seed(0)
    tower = build_student(spec).image_tower
    size = tower.image_size
    pixels = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    seconds: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    firsts: dict[str, torch.Tensor] = {}
    for index in range(warmup + rounds):
        order = list(LAYOUTS) if index % 2 == 0 else list(reversed(LAYOUTS))
        for name in order:
            step_seconds, first = timed_steps(copy.deepcopy(tower), pixels.contiguous(memory_format=LAYOUTS[name]), steps)
            firsts.setdefault(name, first)
            if index >= warmup:
                seconds[name].append(step_seconds)
    ms = {name: 1000 * statistics.median(values) for name, values in seconds.items()}
    return {
        "batch_size": batch_size,
        "image_size": size,
        "ms_per_step": ms,
        "rounds_ms": {name: [1000 * s for s in values] for name, values in seconds.items()},
        "ratio": ms["channels-last"] / ms["NCHW"],
        "max_abs_diff": float((firsts["NCHW"] - firsts["channels-last"]).abs().max()),
    }


def results_table(rows: list[dict], args, threads: int) -> Table:
    table = Table(
        title=f"image tower training step, NCHW against channels-last pixels: {args.steps} steps per run, "
        f"{args.rounds} rounds (+{args.warmup} warm-up), {threads} torch thread(s)"
    )
    for column in ("batch", "pixels", "NCHW ms/step", "channels-last ms/step", "ratio", "max |diff|"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["batch_size"]),
            f"{row['image_size']} px",
            f"{row['ms_per_step']['NCHW']:.1f}",
            f"{row['ms_per_step']['channels-last']:.1f}",
            f"[bold]{row['ratio']:.2f}x",
            f"{row['max_abs_diff']:.1e}",
        )
    table.caption_justify = "left"
    table.caption = "ratio = channels-last / NCHW milliseconds per step (median over rounds); under 1 is faster."
    return table


def positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, not {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, not {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/memory_format.py", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--student", help="a student spec as JSON (default: the dc_clip preset's student)")
    parser.add_argument("--batch-sizes", type=positive_ints, default=[32, 64], help="comma-separated (default 32,64)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per run (default 3)")
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted warm-up rounds first (default 1)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="also write the raw numbers to this file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--steps, --rounds and --threads must be positive, --warmup not negative")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec = json.loads(args.student) if args.student else preset_student_spec()
    except json.JSONDecodeError as exc:
        parser.error(f"--student is not valid JSON ({exc})")
    console = Console()
    try:
        rows = [measure(spec, batch, args.steps, args.rounds, args.warmup) for batch in args.batch_sizes]
    except CompressError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    console.print(results_table(rows, args, torch.get_num_threads()))
    with quiet.native_stderr():  # asking the ExecuTorch runtime for its threads loads it, and its CPU probe
        machine = machine_description()
    console.print(f"machine: {machine['cpu']}, torch {torch.__version__}")
    if args.json:
        report = {"student": spec, "threads": torch.get_num_threads(), "machine": machine, "rows": rows}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        raise SystemExit(main())
