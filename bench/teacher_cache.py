"""Teacher cache benchmark: stage-1 time with the online teacher against the cache, and cache-build
throughput against plain teacher inference, on the demo preset (demo teacher, demo data, default student).

    python bench/teacher_cache.py                      # 512 demo samples, batch 32, one stage-1 epoch
    python bench/teacher_cache.py --samples 2048 --epochs 2 --out runs/bench-cache
    python bench/teacher_cache.py --open-clip ViT-B-16  # also a full-size (random-weight) teacher

Per teacher, everything runs in one process on the same data, in this order: plain teacher
inference, cache build, stage 1 with the online teacher, stage 1 with the cache (same student
initialisation and data order). How much the cache saves is the teacher's share of a training
step: small for the demo teacher, which is cheaper than the default student, large for a
full-size CLIP teacher. Timings are wall-clock on a machine that may be shared; the table prints ratios, and
`report.json` in --out keeps the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Running `python bench/teacher_cache.py` puts bench/ first on sys.path, where a bench script named
# like a package (bench/students.py) would shadow that package; import from the installed project.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

import compress
from compress.cache import TeacherCache, build_cache, distiller_from_cache
from compress.data import collate_samples
from compress.demo_world import open_demo
from compress.distill import Distiller, TeacherTargets
from teachers.demo import load_demo_teacher


def plain_inference(teacher, data, batch_size: int) -> float:
    """Seconds for the teacher to embed every image and caption of `data` once, nothing stored."""
    targets = TeacherTargets(teacher)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_samples)
    started = time.perf_counter()
    for batch in loader:
        targets(batch)
    return time.perf_counter() - started


def stage1(make_distiller, run_dir: Path) -> dict:
    """Stage 1 of a fresh distiller: fit wall seconds and the Distiller's own step seconds."""
    distiller = make_distiller(run_dir)
    started = time.perf_counter()
    report = distiller.fit("distill")
    wall = time.perf_counter() - started
    summary = report["stages"]["distill"]
    return {"wall_s": wall, "step_s": summary["seconds"], "steps": summary["steps"], "samples": summary["samples"],
            "final_loss": summary["final_loss"]}


def random_open_clip(arch: str, folder: Path) -> Path:
    """A random-weight open_clip `arch` saved in the hub layout (for timing a full-size teacher offline)."""
    import open_clip
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME
    from open_clip.push_to_hf_hub import save_config_for_hf
    from safetensors.torch import save_file

    if (folder / HF_SAFE_WEIGHTS_NAME).is_file():
        return folder
    model = open_clip.create_model(arch, pretrained=None)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / HF_SAFE_WEIGHTS_NAME))
    save_config_for_hf(model, folder / HF_CONFIG_NAME, model_config=open_clip.get_model_config(arch))
    return folder


def compare(label: str, teacher, data, args, work: Path) -> dict:
    """Plain inference, cache build, stage 1 online and stage 1 from the cache, for one teacher."""
    options = dict(batch_size=args.batch_size, epochs=args.epochs, lr=1e-3, seed=0, checkpoint_every=10**9,
                   progress=False, console=Console(quiet=True))

    def student():
        torch.manual_seed(0)
        return compress.build_student()

    # A one-step warm-up fit loads what a first fit imports lazily (plotting, reports) outside the timings.
    Distiller(teacher, student(), data=data, run_dir=work / "warmup", **{**options, "steps": 1}).fit("distill")
    inference_s = plain_inference(teacher, data, args.batch_size)
    started = time.perf_counter()
    build_cache(teacher, data, work / "cache", batch_size=args.batch_size, shard_size=256, progress=False)
    build_s = time.perf_counter() - started
    cache = TeacherCache(work / "cache")
    online = stage1(lambda run: Distiller(teacher, student(), data=data, run_dir=run, **options), work / "online")
    cached = stage1(lambda run: distiller_from_cache(cache, student(), data, teacher=teacher, run_dir=run, **options),
                    work / "cached")
    return {"teacher": label, "fingerprint": teacher.fingerprint, "plain_inference_s": inference_s,
            "cache_build_s": build_s, "stage1_online": online, "stage1_cached": cached}


def add_rows(table: Table, result: dict, samples: int, epochs: int) -> None:
    online, cached = result["stage1_online"], result["stage1_cached"]
    inference_s, build_s = result["plain_inference_s"], result["cache_build_s"]
    name = result["teacher"]
    table.add_row(name, "stage 1 epoch, fit wall (s)", f"{online['wall_s'] / epochs:.1f}",
                  f"{cached['wall_s'] / epochs:.1f}", f"{online['wall_s'] / cached['wall_s']:.2f}x faster")
    table.add_row("", "stage 1 epoch, train steps (s)", f"{online['step_s'] / epochs:.1f}",
                  f"{cached['step_s'] / epochs:.1f}", f"{online['step_s'] / cached['step_s']:.2f}x faster")
    table.add_row("", "stage 1 final loss", f"{online['final_loss']:.4f}", f"{cached['final_loss']:.4f}", "")
    table.add_row("", "teacher pass: plain inference vs cache build (samples/s)", f"{samples / inference_s:.1f}",
                  f"{samples / build_s:.1f}", f"build at {inference_s / build_s:.2f}x the plain rate")
    saved = (online["wall_s"] - cached["wall_s"]) / epochs
    table.add_row("", "epochs of stage 1 that repay the build", "", "",
                  f"{build_s / saved:.2f}" if saved > 0 else "never", end_section=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/teacher_cache.py", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="demo training samples (default 512)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1, help="stage-1 epochs for both runs (default 1)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--open-clip", metavar="ARCH",
                        help="also compare with a random-weight open_clip ARCH (e.g. ViT-B-16) as the teacher: "
                             "a full-size teacher's cost, measured offline")
    parser.add_argument("--demo-teacher", default="{}", metavar="JSON",
                        help='demo teacher config overrides, e.g. {"width": 64} (default: the demo preset)')
    parser.add_argument("--out", help="keep the caches, the runs and report.json here (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-teacher-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("demo", "open-clip"):
        shutil.rmtree(work / stale, ignore_errors=True)

    console.print("loading the demo teacher (trained and cached on first use) and the default student ...")
    compress.build_student()  # the first call trains and caches the default tokenizer: keep it out of the timings
    data = open_demo("train", size=args.samples)
    results = [compare("demo", load_demo_teacher(**json.loads(args.demo_teacher)), data, args, work / "demo")]
    if args.open_clip:
        folder = random_open_clip(args.open_clip, work / f"random-{args.open_clip}")
        teacher = compress.load_teacher({"name": "open-clip", "location": str(folder), "languages": "en,zh"})
        label = f"open-clip {args.open_clip}\n(random weights)"
        results.append(compare(label, teacher, data, args, work / "open-clip"))

    table = Table(title=f"teacher cache vs online teacher: {args.samples} demo samples, batch {args.batch_size}, "
                        f"default student, {args.epochs} stage-1 epoch(s), {torch.get_num_threads()} torch thread(s)")
    for column in ("teacher", "measure", "online / plain", "with the cache", "ratio"):
        table.add_column(column, justify="left" if column in ("teacher", "measure") else "right")
    for result in results:
        add_rows(table, result, args.samples, args.epochs)
    console.print(table)

    report = {"samples": args.samples, "batch_size": args.batch_size, "epochs": args.epochs,
              "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.platform(),
              "load_average": list(os.getloadavg()), "results": results}
    (work / "report.json").write_text(json.dumps(report, indent=2))
    console.print(f"raw numbers: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
