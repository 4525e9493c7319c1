"""Distiller overhead benchmark: the `Distiller`'s training throughput against a minimal PyTorch loop
doing the same work, stage 1 (feature distillation) and stage 2 (alignment), on the demo preset.

    python bench/distiller_overhead.py                         # 4 rounds + 1 warm-up, 6 steps of 32
    python bench/distiller_overhead.py --steps 20 --rounds 5 --batch-size 64 --json out.json

Both sides get the same teacher, the same student architecture and initial weights, the same
data in the same order, batch size, loss, optimizer (AdamW, weight decay on matrices only),
cosine schedule, gradient clipping and adapters. The minimal loop is written out below with
plain torch: for each batch, the teacher embeds the images and the captions (one call per
language) under no_grad, the student preprocesses and tokenizes, runs its towers, the adapters
map stage-1 outputs to the teacher's width, then loss, backward, clip, step, schedule step.

The two run interleaved in one process (A B, then B A in the next round, ...) with the same torch
thread count; the warm-up round(s) first (--warmup-steps steps each) are not counted. The
Distiller runs with its normal settings: rich progress bar on (rendered as on a terminal, to
stderr), the loss log (every step's loss, read off the device every `log_every` steps),
`checkpoint_every` at its default (so a short run writes its stage-end checkpoint only). Its
time is the fit's own training-loop wall time (data loading, steps, progress bar, logging,
checkpoints); "fit()" is the whole call, which adds the end of the fit (report.json,
loss_curves.png, the student's save_pretrained, the summary table). The per-step losses of both
sides are compared, which checks that they really did the same work.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

import compress
import compress.paths
from compress import quiet
from compress.data.sampler import epoch_order
from compress.distill import Distiller
from compress.distill.trainer import STAGE_SEED_OFFSETS
from teachers.demo import CONFIG_FILE, config_hash, demo_config, load_demo_teacher

STAGES = ("distill", "align")
STAGE_NAMES = {"distill": "1 distill", "align": "2 align"}
TARGET_RATIO = 0.97

# The training settings both sides use (the Distiller's defaults, passed to it explicitly).
SEED = 0
LR = 1e-3
WEIGHT_DECAY = 0.05
GRAD_CLIP = 1.0
ADAMW = dict(betas=(0.9, 0.98), eps=1e-6)  # what the Distiller's "adamw" optimizer uses
SMOOTH_L1_BETA = 1.0
INIT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0
# The same teacher architecture as the full demo teacher, trained for one step only: throughput
# depends on the architecture, not on how well it was trained.
QUICK_TEACHER = dict(steps=1, batch_size=8)


# ---------------------------------------------------------------------------- setup


def load_bench_teacher(force_full: bool, device: torch.device, console: Console):
    """The full demo teacher when it is cached (or `force_full`), else the same architecture trained one step.

    The one-step teacher is trained (seconds) into a temporary folder and read back from it, so the
    bench never depends on, or adds to, the cache.
    """
    full_folder = compress.paths.cache_dir() / "teachers" / f"demo-{config_hash(demo_config())}"
    if force_full or (full_folder / CONFIG_FILE).is_file():
        return load_demo_teacher(progress=True, device=str(device)), "demo teacher, full default config"
    console.print(
        "the full demo teacher is not cached; using its architecture trained for one step "
        f"({', '.join(f'{k}={v}' for k, v in QUICK_TEACHER.items())}); --full-teacher trains the full one"
    )
    folder = Path(tempfile.mkdtemp(prefix="bench-demo-teacher-"))
    try:
        teacher = load_demo_teacher(folder, progress=False, device=str(device), **QUICK_TEACHER)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return teacher, "demo teacher architecture, 1 training step"


def fresh_student(device: torch.device):
    """The default student, initialised from seed 0 (the same weights every call)."""
    torch.manual_seed(SEED)
    return compress.build_student().to(device)


def seed_everything() -> None:
    """What `Distiller.fit` does on a fresh start (the student has no dropout, so it changes nothing measured)."""
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    random.seed(SEED)


# ---------------------------------------------------------------------------- the minimal loop


def param_groups(modules: Sequence[nn.Module], no_decay_modules: Sequence[nn.Module] = ()) -> list[dict]:
    """Weight decay on matrices; none on vectors, scalars and loss parameters (the temperature)."""
    exempt = {id(p) for m in no_decay_modules for p in m.parameters()}
    decay, no_decay = [], []
    for module in modules:
        for p in module.parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or id(p) in exempt else decay).append(p)
    return [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]


def cosine(total_steps: int):
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total_steps))))


def teacher_targets(teacher, samples) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher image and caption embeddings; captions embedded one language at a time, rows in batch order."""
    with torch.no_grad():
        image = teacher.encode_images([s.image for s in samples]).float()
        text = torch.empty(len(samples), image.shape[1], device=image.device)
        for lang in dict.fromkeys(s.lang for s in samples):
            rows = [i for i, s in enumerate(samples) if s.lang == lang]
            text[torch.tensor(rows, device=text.device)] = teacher.encode_texts([samples[i].caption for i in rows], lang).float()
    return image, text


def minimal_run(stage: str, teacher, student, data, steps: int, batch_size: int, device: torch.device) -> dict:
    """`steps` optimizer steps of `stage` with a plain loop: wall and CPU seconds, per-step losses."""
    seed_everything()
    torch.manual_seed(SEED)  # adapters start from the run's seed, as in the Distiller
    adapters = nn.ModuleDict(
        {"image": nn.Linear(student.embed_dim, teacher.embed_dim), "text": nn.Linear(student.embed_dim, teacher.embed_dim)}
    ).to(device)
    log_scale = nn.Parameter(torch.tensor(math.log(1.0 / INIT_TEMPERATURE), device=device))
    temperature = nn.ParameterList([log_scale])

    # Timed from here: the Distiller's training loop also builds its optimizer and schedule.
    started, cpu_started = time.perf_counter(), time.process_time()
    if stage == "distill":
        groups = param_groups([student, adapters])
    else:
        groups = param_groups([student, temperature], no_decay_modules=[temperature])
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=LR, **ADAMW)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine(steps))
    student.train()
    adapters.train()
    losses = []
    order = epoch_order(len(data), SEED + STAGE_SEED_OFFSETS[stage], 0)
    for step in range(steps):
        samples = [data[i] for i in order[step * batch_size : (step + 1) * batch_size]]
        optimizer.zero_grad(set_to_none=True)
        if stage == "distill":
            target_image, target_text = teacher_targets(teacher, samples)
        image = student.image_tower(student.preprocess_images([s.image for s in samples]).to(device))
        text = student.text_tower(student.tokenize([s.caption for s in samples]).to(device))
        if stage == "distill":
            loss = torch.stack(
                [
                    F.smooth_l1_loss(
                        F.normalize(adapters["image"](image), dim=-1), F.normalize(target_image, dim=-1), beta=SMOOTH_L1_BETA
                    ),
                    F.smooth_l1_loss(
                        F.normalize(adapters["text"](text), dim=-1), F.normalize(target_text, dim=-1), beta=SMOOTH_L1_BETA
                    ),
                ]
            ).sum()
        else:
            image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
            logits = log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp() * (image @ text.T)
            labels = torch.arange(len(samples), device=device)
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        loss.backward()
        nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu_started, "losses": losses}


# ---------------------------------------------------------------------------- the Distiller


class TimedDistiller(Distiller):
    """The Distiller unchanged, plus two stopwatches: around its checkpoint writes, and the CPU clock
    when its training loop hands over to the end of the fit."""

    checkpoint_seconds = 0.0
    loop_cpu_end: float | None = None

    def _save_checkpoint(self):
        started = time.perf_counter()
        try:
            return super()._save_checkpoint()
        finally:
            self.checkpoint_seconds += time.perf_counter() - started

    def _finish(self, plan, wall_seconds):
        self.loop_cpu_end = time.process_time()
        return super()._finish(plan, wall_seconds)


def distiller_run(
    stage: str, teacher, student, data, steps: int, batch_size: int, device: torch.device, console: Console
) -> dict:
    """`steps` steps of `stage` with the Distiller at its normal settings: loop and fit() times, losses."""
    run_dir = Path(tempfile.mkdtemp(prefix="bench-distiller-"))
    try:
        distiller = TimedDistiller(
            teacher,
            student,
            data=data,
            run_dir=run_dir,
            stage1_loss="smooth_l1",
            stage2_losses=("infonce",),
            optimizer="adamw",
            lr=LR,
            weight_decay=WEIGHT_DECAY,
            schedule="cosine",
            batch_size=batch_size,
            steps={stage: steps},
            grad_clip=GRAD_CLIP,
            seed=SEED,
            device=str(device),
            progress=True,
            console=console,
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        report = distiller.fit(stage)
        fit_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "wall_s": report["timings"]["fit_wall_seconds"],  # the fit's training loop, before its end-of-fit work
        "cpu_s": distiller.loop_cpu_end - cpu_started,
        "fit_s": fit_seconds,
        "checkpoint_s": distiller.checkpoint_seconds,
        "losses": [row["loss"] for row in report["loss_log"]],
    }


# ---------------------------------------------------------------------------- report


def ratio_text(value: float, bold: bool = False) -> str:
    colour = "green" if value >= TARGET_RATIO else "red"
    style = f"bold {colour}" if bold else colour
    return f"[{style}]{value:.3f}[/{style}]"


def make_row(label, first: str, minimal: dict, distiller: dict, samples: int) -> dict:
    return {
        "round": label,
        "first": first,
        "minimal_sps": samples / minimal["wall_s"],
        "distiller_sps": samples / distiller["wall_s"],
        "fit_sps": samples / distiller["fit_s"],
        "ratio": minimal["wall_s"] / distiller["wall_s"],
        "ratio_cpu": minimal["cpu_s"] / distiller["cpu_s"],
        "ratio_fit": minimal["wall_s"] / distiller["fit_s"],
        "checkpoint_s": distiller["checkpoint_s"],
        "samples": samples,
        "seconds": {
            "minimal_wall": minimal["wall_s"],
            "minimal_cpu": minimal["cpu_s"],
            "distiller_loop_wall": distiller["wall_s"],
            "distiller_loop_cpu": distiller["cpu_s"],
            "distiller_fit_wall": distiller["fit_s"],
        },
        "loss_diff": max(abs(a - b) for a, b in zip(distiller["losses"], minimal["losses"], strict=True)),
    }


MEDIAN_KEYS = ("minimal_sps", "distiller_sps", "ratio", "ratio_cpu", "fit_sps", "ratio_fit", "checkpoint_s", "loss_diff")


def summarise(rows: list[dict]) -> dict:
    """The median over rounds of every column (the loss difference: the largest)."""
    out = {key: statistics.median(r[key] for r in rows) for key in MEDIAN_KEYS}
    out["loss_diff"] = max(r["loss_diff"] for r in rows)
    return out


def best_of(rows: list[dict]) -> dict:
    """Each side's fastest round (the one least disturbed by other load), and the ratios of those."""
    seconds = {key: min(r["seconds"][key] for r in rows) for key in rows[0]["seconds"]}
    samples = rows[0]["samples"]
    return {
        "minimal_sps": samples / seconds["minimal_wall"],
        "distiller_sps": samples / seconds["distiller_loop_wall"],
        "fit_sps": samples / seconds["distiller_fit_wall"],
        "ratio": seconds["minimal_wall"] / seconds["distiller_loop_wall"],
        "ratio_cpu": seconds["minimal_cpu"] / seconds["distiller_loop_cpu"],
        "ratio_fit": seconds["minimal_wall"] / seconds["distiller_fit_wall"],
        "checkpoint_s": min(r["checkpoint_s"] for r in rows),
        "loss_diff": max(r["loss_diff"] for r in rows),
    }


def results_table(results: dict[str, list[dict]], args, teacher_note: str, threads: int) -> Table:
    table = Table(
        title=f"Distiller vs minimal PyTorch loop, samples/s: batch {args.batch_size}, {args.steps} steps "
        f"per run, {args.rounds} rounds (+{args.warmup} warm-up), {threads} torch thread(s)"
    )
    columns = (
        "stage",
        "round",
        "first",
        "minimal",
        "Distiller",
        "ratio",
        "ratio CPU",
        "fit()",
        "ratio fit()",
        "ckpt s",
        "loss diff",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("stage", "round", "first") else "right")
    for stage, rows in results.items():
        for row in rows:
            table.add_row(
                STAGE_NAMES[stage],
                str(row["round"]),
                row["first"],
                f"{row['minimal_sps']:.1f}",
                f"{row['distiller_sps']:.1f}",
                f"{row['ratio']:.3f}",
                f"{row['ratio_cpu']:.3f}",
                f"{row['fit_sps']:.1f}",
                f"{row['ratio_fit']:.3f}",
                f"{row['checkpoint_s']:.2f}",
                f"{row['loss_diff']:.0e}",
            )
        for label, m in (("median", summarise(rows)), ("best", best_of(rows))):
            table.add_row(
                f"[bold]{STAGE_NAMES[stage]}",
                f"[bold]{label}",
                "",
                f"[bold]{m['minimal_sps']:.1f}",
                f"[bold]{m['distiller_sps']:.1f}",
                ratio_text(m["ratio"], bold=label == "median"),
                ratio_text(m["ratio_cpu"]),
                f"{m['fit_sps']:.1f}",
                f"{m['ratio_fit']:.3f}",
                f"{m['checkpoint_s']:.2f}",
                f"{m['loss_diff']:.0e}",
                end_section=label == "best",
            )
    table.caption_justify = "left"
    table.caption = (
        f"{teacher_note}; default student; demo:train data; stage 1 smooth_l1 + linear adapters, stage 2 InfoNCE; "
        "AdamW, cosine, clip 1.0.\n"
        "minimal = the plain loop (data loading + steps). Distiller = its training loop: data loading + steps + rich "
        "progress bar (on) + loss log (read every log_every=10 steps and at the stage end) + checkpoints "
        "(checkpoint_every=500, the default, so here only the stage-end one; its seconds in 'ckpt s').\n"
        "fit() = the whole fit() call: the loop + report.json, loss_curves.png, student save_pretrained, summary.\n"
        "ratio = Distiller/minimal samples/s by wall clock; ratio CPU = the same by process CPU time (steadier on a "
        "shared machine); loss diff = largest |loss difference| over the steps (0: the very same computation).\n"
        "median = the median over rounds of each column; best = each side's fastest round and the ratio of those.\n"
        f"Target: ratio >= {TARGET_RATIO}."
    )
    return table


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/distiller_overhead.py", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run and stage (default 6)")
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted warm-up rounds first (default 1)")
    parser.add_argument("--warmup-steps", type=int, default=2, help="steps per warm-up run (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    parser.add_argument("--stages", default="distill,align", help="comma-separated: distill, align")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--full-teacher",
        action="store_true",
        help="train the full demo teacher if it is not cached (minutes), instead of a 1-step one",
    )
    parser.add_argument("--json", help="also write the raw numbers to this file")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages or any(s not in STAGES for s in stages):
        parser.error(f"--stages takes {', '.join(STAGES)}")
    if min(args.steps, args.rounds, args.batch_size, args.warmup_steps) < 1 or args.warmup < 0:
        parser.error("--steps, --warmup-steps, --rounds and --batch-size must be >= 1, --warmup >= 0")

    console = Console(width=None if sys.stdout.isatty() else 120)
    # The Distiller's own console: progress bar and summary on stderr, rendered as on a terminal.
    train_console = Console(stderr=True, force_terminal=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = torch.device(args.device)

    teacher, teacher_note = load_bench_teacher(args.full_teacher, device, console)
    compress.build_student()  # the first build loads and caches the tokenizer: keep it out of every timing
    data = compress.open_data("demo:train")
    if max(args.steps, args.warmup_steps) * args.batch_size > len(data):
        parser.error(f"steps x --batch-size is more than the {len(data)} demo training samples")

    results: dict[str, list[dict]] = {stage: [] for stage in stages}
    bench_start = time.perf_counter()
    for index in range(args.warmup + args.rounds):
        warm = index < args.warmup
        steps = args.warmup_steps if warm else args.steps
        for stage in stages:
            # Alternate who goes first, so a slow drift of the machine's load favours neither side.
            distiller_first = (index + STAGES.index(stage)) % 2 == 0
            measured = {}
            for side in ("distiller", "minimal") if distiller_first else ("minimal", "distiller"):
                student = fresh_student(device)
                gc.collect()  # the previous run's garbage is collected here, not inside the next timing
                run = distiller_run if side == "distiller" else minimal_run
                extra = (train_console,) if side == "distiller" else ()
                measured[side] = run(stage, teacher, student, data, steps, args.batch_size, device, *extra)
                del student
            label = f"warm-up {index + 1}" if warm else index - args.warmup + 1
            row = make_row(
                label,
                "Distiller" if distiller_first else "minimal",
                measured["minimal"],
                measured["distiller"],
                steps * args.batch_size,
            )
            console.print(
                f"round {row['round']}, {STAGE_NAMES[stage]}: minimal {row['minimal_sps']:.1f}, "
                f"Distiller {row['distiller_sps']:.1f} samples/s (ratio {row['ratio']:.3f}, "
                f"CPU {row['ratio_cpu']:.3f}), loss diff {row['loss_diff']:.0e}"
            )
            if not warm:
                results[stage].append(row)

    console.print(results_table(results, args, teacher_note, threads))
    console.print(
        f"bench wall time {time.perf_counter() - bench_start:.0f} s; torch {torch.__version__}, "
        f"{platform.machine()}, device {device}"
    )
    if args.json:
        payload = {
            "args": vars(args),
            "threads": threads,
            "teacher": teacher_note,
            "torch": torch.__version__,
            "results": results,
            "medians": {s: summarise(results[s]) for s in stages},
            "best": {s: best_of(results[s]) for s in stages},
        }
        Path(args.json).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        raise SystemExit(main())
