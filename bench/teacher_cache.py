"""Teacher cache benchmark: stage-1 time with the online teacher against the cache, and cache-build
throughput against plain teacher inference, on the demo preset: the dc_clip recipe's demo config
(demo teacher, demo data, its student and its stage-1 settings).

    python bench/teacher_cache.py                      # 512 demo samples, one stage-1 epoch
    python bench/teacher_cache.py --samples 2048 --epochs 2 --out runs/bench-cache
    python bench/teacher_cache.py --open-clip ViT-B-16  # also a full-size (random-weight) teacher
    python bench/teacher_cache.py --device cuda        # teacher and student on the GPU

Per teacher, everything runs in one process on the same data, in this order: plain teacher
inference, cache build, stage 1 with the online teacher, stage 1 with the cache (same student
initialisation and data order). Inside both stage-1 runs the seconds spent getting the teacher
targets are timed, which gives the teacher's share of an online step and so the most any cache
can save: online step time / (online step time - teacher time). That share is small for the demo
teacher, which is far cheaper than the student's forward and backward pass, and large for a
full-size CLIP teacher. Timings are wall-clock on a machine that may be shared; the table prints
ratios, and `report.json` in --out keeps the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

import compress
from compress import quiet
from compress.cache import TeacherCache, build_cache, distiller_from_cache
from compress.console import make_console
from compress.data import collate_samples
from compress.demo_world import open_demo
from compress.distill import Distiller, TeacherTargets
from compress.recipes import load_config
from compress.recipes.dc_clip import student_section
from teachers.demo import load_demo_teacher


class TimedTargets:
    """A targets callable that adds up the seconds its calls take (waiting for the GPU to finish them)."""

    def __init__(self, targets, device: torch.device):
        self.targets, self.device, self.seconds = targets, device, 0.0

    def __call__(self, samples):
        started = time.perf_counter()
        out = self.targets(samples)
        synchronize(self.device)
        self.seconds += time.perf_counter() - started
        return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def demo_preset() -> tuple[dict, dict]:
    """The dc_clip recipe's demo student and its stage-1 Distiller settings."""
    config = load_config("dc_clip")
    distill = config["distill"]
    options = {key: distill[key] for key in ("stage1_loss", "optimizer", "weight_decay", "grad_clip")}
    for key in ("lr", "batch_size"):  # one value, or one per stage
        options[key] = distill[key]["distill"] if isinstance(distill[key], dict) else distill[key]
    return student_section(config), options


def plain_inference(teacher, data, batch_size: int, device: torch.device) -> float:
    """Seconds for the teacher to embed every image and caption of `data` once, nothing stored."""
    targets = TeacherTargets(teacher)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_samples)
    started = time.perf_counter()
    for batch in loader:
        targets(batch)
    synchronize(device)
    return time.perf_counter() - started


def stage1(make_distiller, run_dir: Path, device: torch.device) -> dict:
    """Stage 1 of a fresh distiller: fit wall seconds, the Distiller's own step seconds, and the
    seconds of those steps spent getting the teacher targets."""
    distiller = make_distiller(run_dir)
    distiller.targets = timed = TimedTargets(distiller.targets, device)
    started = time.perf_counter()
    report = distiller.fit("distill")
    wall = time.perf_counter() - started
    summary = report["stages"]["distill"]
    return {
        "wall_s": wall,
        "step_s": summary["seconds"],
        "targets_s": timed.seconds,
        "steps": summary["steps"],
        "samples": summary["samples"],
        "final_loss": summary["final_loss"],
    }


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


def compare(label: str, teacher, data, student_config: dict, distill_options: dict, args, work: Path) -> dict:
    """Plain inference, cache build, stage 1 online and stage 1 from the cache, for one teacher."""
    device = torch.device(args.device)
    batch_size = distill_options["batch_size"]
    options = dict(
        distill_options,
        epochs=args.epochs,
        seed=0,
        checkpoint_every=10**9,
        device=args.device,
        progress=False,
        console=Console(quiet=True),
    )

    def student():
        torch.manual_seed(0)
        return compress.build_student({**student_config, "embed_dim": int(teacher.embed_dim)})

    # A one-step warm-up fit loads what a first fit imports lazily (plotting, reports) outside the timings.
    Distiller(teacher, student(), data=data, run_dir=work / "warmup", **{**options, "steps": 1}).fit("distill")
    inference_s = plain_inference(teacher, data, batch_size, device)
    started = time.perf_counter()
    build_cache(teacher, data, work / "cache", batch_size=batch_size, shard_size=256, progress=False)
    build_s = time.perf_counter() - started
    cache = TeacherCache(work / "cache")
    online = stage1(lambda run: Distiller(teacher, student(), data=data, run_dir=run, **options), work / "online", device)
    cached = stage1(
        lambda run: distiller_from_cache(cache, student(), data, teacher=teacher, run_dir=run, **options), work / "cached", device
    )
    return {
        "teacher": label,
        "fingerprint": teacher.fingerprint,
        "plain_inference_s": inference_s,
        "cache_build_s": build_s,
        "stage1_online": online,
        "stage1_cached": cached,
    }


def cache_ceiling(online: dict) -> float:
    """The most any cache can speed up stage 1: the online step time without the teacher's part."""
    rest = online["step_s"] - online["targets_s"]
    return online["step_s"] / rest if rest > 0 else float("inf")


def add_rows(table: Table, result: dict, samples: int, epochs: int) -> None:
    online, cached = result["stage1_online"], result["stage1_cached"]
    inference_s, build_s = result["plain_inference_s"], result["cache_build_s"]
    name = result["teacher"]
    table.add_row(
        name,
        "stage 1 epoch, fit wall (s)",
        f"{online['wall_s'] / epochs:.1f}",
        f"{cached['wall_s'] / epochs:.1f}",
        f"{online['wall_s'] / cached['wall_s']:.2f}x faster",
    )
    table.add_row(
        "",
        "stage 1 epoch, train steps (s)",
        f"{online['step_s'] / epochs:.1f}",
        f"{cached['step_s'] / epochs:.1f}",
        f"{online['step_s'] / cached['step_s']:.2f}x faster",
    )
    table.add_row(
        "",
        "stage 1 epoch, of which teacher targets (s)",
        f"{online['targets_s'] / epochs:.2f}",
        f"{cached['targets_s'] / epochs:.2f}",
        f"teacher: {online['targets_s'] / online['step_s']:.0%} of an online step",
    )
    table.add_row("", "the most any cache can give", "", "", f"{cache_ceiling(online):.2f}x faster")
    table.add_row("", "stage 1 final loss", f"{online['final_loss']:.4f}", f"{cached['final_loss']:.4f}", "")
    table.add_row(
        "",
        "teacher pass: plain inference vs cache build (samples/s)",
        f"{samples / inference_s:.1f}",
        f"{samples / build_s:.1f}",
        f"build at {inference_s / build_s:.2f}x the plain rate",
    )
    saved = (online["wall_s"] - cached["wall_s"]) / epochs
    table.add_row(
        "", "epochs of stage 1 that repay the build", "", "", f"{build_s / saved:.2f}" if saved > 0 else "never", end_section=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/teacher_cache.py", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="demo training samples (default 512)")
    parser.add_argument("--batch-size", type=int, help="stage-1 batch size (default: the demo preset's)")
    parser.add_argument("--epochs", type=int, default=1, help="stage-1 epochs for both runs (default 1)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="teacher and student device: cpu (default) or cuda")
    parser.add_argument(
        "--open-clip",
        metavar="ARCH",
        help="also compare with a random-weight open_clip ARCH (e.g. ViT-B-16) as the teacher: "
        "a full-size teacher's cost, measured offline",
    )
    parser.add_argument(
        "--demo-teacher",
        default="{}",
        metavar="JSON",
        help='demo teacher config overrides, e.g. {"width": 64} (default: the demo preset)',
    )
    parser.add_argument("--out", help="keep the caches, the runs and report.json here (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = make_console()
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-teacher-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("demo", "open-clip"):
        shutil.rmtree(work / stale, ignore_errors=True)

    student_config, distill_options = demo_preset()
    if args.batch_size:
        distill_options["batch_size"] = args.batch_size
    console.print("loading the demo teacher (trained and cached on first use) and the demo preset's student ...")
    compress.build_student(student_config)  # the first call trains and caches the default tokenizer: not timed
    data = open_demo("train", size=args.samples)
    teacher = load_demo_teacher(device=args.device, **json.loads(args.demo_teacher))
    results = [compare("demo", teacher, data, student_config, distill_options, args, work / "demo")]
    if args.open_clip:
        folder = random_open_clip(args.open_clip, work / f"random-{args.open_clip}")
        teacher = compress.load_teacher(
            {"name": "open-clip", "location": str(folder), "languages": "en,zh", "device": args.device}
        )
        label = f"open-clip {args.open_clip}\n(random weights)"
        results.append(compare(label, teacher, data, student_config, distill_options, args, work / "open-clip"))

    image = student_config.get("image", {})
    student_name = f"{image.get('model', 'default')}@{image.get('image_size', 'default')} student"
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{torch.get_num_threads()} torch thread(s)"
    table = Table(
        title=f"teacher cache vs online teacher: {args.samples} demo samples, batch "
        f"{distill_options['batch_size']}, demo preset ({student_name}), {args.epochs} stage-1 "
        f"epoch(s), {where}"
    )
    for column in ("teacher", "measure", "online / plain", "with the cache", "ratio"):
        table.add_column(column, justify="left" if column in ("teacher", "measure") else "right")
    for result in results:
        add_rows(table, result, args.samples, args.epochs)
    console.print(table)

    report = {
        "samples": args.samples,
        "student": student_config,
        "distill": distill_options,
        "epochs": args.epochs,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "load_average": list(os.getloadavg()),
        "results": results,
    }
    (work / "report.json").write_text(json.dumps(report, indent=2))
    console.print(f"raw numbers: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        raise SystemExit(main())
