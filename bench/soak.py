"""Kill soak: a two-stage fit and a teacher-cache build are SIGKILLed at seeded random moments and
resumed after each kill, and must end bit for bit where an uninterrupted run ends.

    python bench/soak.py                        # 24 kills: 16 in the fit, 8 in the cache build
    python bench/soak.py --fit-kills 40 --cache-kills 20 --seed 3 --json soak.json

Both jobs run in a child process (`python bench/soak.py child fit|cache FOLDER`): the fit is the
resume tests' run (tests/distill_helpers.py: both stages, warmup + cosine, dropout, a checkpoint
every 3 steps and at each epoch end) and the build embeds 48 samples into 12 shards. In the child
every fsync sleeps a little, as on a slow disk, so checkpoint and shard writes take long enough to
be hit. Each kill, drawn by one seeded generator, lands at a random moment of the work left, at a
random moment of a random global step still to train (the fit), or the moment a checkpoint or shard
is being written (its temporary on disk). After each kill
every file on disk must parse (no half-written checkpoint, shard, index or report); the child is
then started again, resuming from what is on disk, until it finishes. A finished run must equal the
uninterrupted reference: the student, the adapters, the last checkpoints (weights, optimizer step
and moments, random state), the report (timings and paths aside), every cache shard and the index;
its loss log must hold each global step once, with no gap. Any mismatch makes the exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the small teacher, student and data of the resume tests

FIT_STEPS = 16  # tests/distill_helpers.RESUME_STEPS_PER_RUN: 24 samples, batch 6, 2 epochs per stage, 2 stages
CACHE_SAMPLES, CACHE_SHARD_SIZE = 48, 4
READ_DELAY = 0.004  # seconds per sample read, so the fit lasts long enough to be hit at random
FSYNC_DELAY = 0.02  # seconds each fsync sleeps in the child
READY = "soak-child-ready"
POSITION_BYTES = 24
KILLS_PER_ROUND = 4  # kills aimed at one fit before it may finish


# ---------------------------------------------------------------------------- the child


def _slow_fsync() -> None:
    real = os.fsync

    def fsync(fd):
        time.sleep(FSYNC_DELAY)
        return real(fd)

    os.fsync = fsync


def _watch_position(distiller, path: Path) -> None:
    """Keep `path` holding the stage and global step the fit is at (fixed width, overwritten in place)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def loop():
        while True:
            state = distiller.state  # None until the fit has started or restored
            if state is not None:
                os.pwrite(fd, f"{state.stage or '-':<12}{state.global_step:>12}".encode()[:POSITION_BYTES], 0)
            time.sleep(0.002)

    threading.Thread(target=loop, daemon=True).start()


def _colours(n: int):
    from distill_helpers import ColourPairs

    class Colours(ColourPairs):
        def digest(self) -> str:  # what the cache checks its data against
            return hashlib.sha256(json.dumps([self.colours, self.noise.tolist()]).encode()).hexdigest()

    return Colours(n, delay=READ_DELAY)


def child(job: str, folder: Path) -> None:
    import torch

    torch.set_num_threads(1)
    _slow_fsync()
    folder.mkdir(parents=True, exist_ok=True)
    if job == "fit":
        from distill_helpers import resume_distiller

        from compress.distill import checkpoint as ckpt

        distiller = resume_distiller(folder / "run", data=_colours(24))
        resume = ckpt.latest_checkpoint(folder / "run" / "checkpoints") is not None
        _watch_position(distiller, folder / "position")
        print(READY, flush=True)
        distiller.fit("both", resume=resume)
    else:
        from distill_helpers import RandomTeacher

        from compress.cache import build_cache

        print(READY, flush=True)
        build_cache(
            RandomTeacher(embed_dim=16),
            _colours(CACHE_SAMPLES),
            folder / "cache",
            shard_size=CACHE_SHARD_SIZE,
            batch_size=CACHE_SHARD_SIZE,
            progress=False,
        )


# ---------------------------------------------------------------------------- what is on disk


def _parses(path: Path) -> bool:
    """Whether a published file reads whole: JSON parses, every tensor of a safetensors file loads."""
    from safetensors import safe_open

    try:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():
                    f.get_tensor(name)
                json.loads((f.metadata() or {}).get("keys", "[]"))
        return True
    except Exception:
        return False


def half_written(folder: Path) -> list[str]:
    """Published files (temporaries aside) that do not parse."""
    bad = []
    for path in sorted(folder.rglob("*")):
        temporary = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.is_file() and not temporary and path.suffix in (".json", ".safetensors") and not _parses(path):
            bad.append(str(path.relative_to(folder)))
    return bad


def _writing(folder: Path, job: str) -> bool:
    """Whether a checkpoint (fit) or shard (cache) is being written: its temporary is on disk."""
    if job == "fit":
        root = folder / "run" / "checkpoints"
        return root.is_dir() and any(p.name.startswith(".tmp-step-") for p in root.iterdir())
    root = folder / "cache" / "shards"
    return root.is_dir() and any(p.name.endswith(".tmp") for p in root.iterdir())


def _position(folder: Path) -> tuple[str, int] | None:
    """(stage or "-", global step) the fit child last reported, or None before it reported any."""
    path = folder / "position"
    raw = path.read_bytes() if path.is_file() else b""
    if len(raw) < POSITION_BYTES:
        return None
    return raw[:12].decode(errors="replace").strip(), int(raw[12:POSITION_BYTES])


def _landing(folder: Path, job: str) -> str:
    if job == "cache":
        return "shard write" if _writing(folder, job) else "embedding"
    position = _position(folder)
    if _writing(folder, job):
        stage = {"distill": "stage 1", "align": "stage 2"}.get(position[0], "between stages") if position else "start-up"
        return f"checkpoint write ({stage})"
    if position is None or (position[0] == "-" and position[1] == 0):
        return "start-up"
    stage, step = position
    if stage == "-":
        return "finishing" if step >= FIT_STEPS else "between stages"
    return {"distill": "stage 1", "align": "stage 2"}.get(stage, stage)


def _progress(folder: Path, job: str) -> float:
    """The share of the job already on disk (for drawing a kill moment within what is left)."""
    if job == "fit":
        from compress.distill import checkpoint as ckpt

        latest = ckpt.latest_checkpoint(folder / "run" / "checkpoints")
        return int(latest.name.split("-")[1]) / FIT_STEPS if latest else 0.0
    shards = folder / "cache" / "shards"
    done = len([p for p in shards.glob("shard-*.safetensors")]) if shards.is_dir() else 0
    return done / (CACHE_SAMPLES // CACHE_SHARD_SIZE)


def outputs(folder: Path, job: str) -> dict[str, str]:
    """What must equal the uninterrupted run: a digest of each output file's content (see `content_digest`)."""
    root = folder / ("cache" if job == "cache" else "run")
    if job == "cache":
        files = [root / "cache.json", root / "build.json", *sorted((root / "shards").glob("shard-*.safetensors"))]
    else:
        files = [
            root / "report.json",
            root / "adapters.safetensors",
            *sorted((root / "student").iterdir()),
            *sorted(p for p in (root / "checkpoints").rglob("*") if p.is_file()),
        ]
    return {str(p.relative_to(root)): content_digest(p, root) for p in files}


def content_digest(path: Path, root: Path) -> str:
    """sha256 of what a file holds. A safetensors file: its metadata and every tensor's dtype, shape and
    bytes (safetensors orders header keys as it likes, so equal content may differ byte for byte). A
    JSON file: its value without wall-clock timings, resume bookkeeping and the run's own path; a shard
    digest in a cache index is checked against the shard and left out (the shard is compared itself)."""
    if path.suffix == ".safetensors":
        import torch
        from safetensors import safe_open

        digest = hashlib.sha256()
        with safe_open(str(path), framework="pt") as f:
            digest.update(json.dumps(f.metadata() or {}, sort_keys=True).encode())
            for name in sorted(f.keys()):
                tensor = f.get_tensor(name).contiguous()
                digest.update(f"{name} {tensor.dtype} {list(tensor.shape)}".encode())
                digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()
    if path.suffix == ".json":
        value = json.loads(path.read_text(encoding="utf-8"))
        if path.name == "cache.json":
            from compress.files import file_sha256

            for shard in value["shards"]:
                if shard.pop("sha256") != file_sha256(root / shard["file"]):
                    return f"the index's sha256 of {shard['file']} is not the shard's"
        return hashlib.sha256(json.dumps(_normalised(value, str(root)), sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _normalised(value, run: str):
    if isinstance(value, dict):
        return {
            k: _normalised(v, run)
            for k, v in value.items()
            if k not in ("timings", "resumed_from", "seconds") and "seconds" not in k and "per_s" not in k
        }
    if isinstance(value, list):
        return [_normalised(v, run) for v in value]
    return value.replace(run, "<run>") if isinstance(value, str) else value


def loss_log_faults(folder: Path) -> list[str]:
    steps = [entry["global_step"] for entry in json.loads((folder / "run" / "report.json").read_text())["loss_log"]]
    faults = [f"step {s} repeated" for s, n in Counter(steps).items() if n > 1]
    faults += [f"step {s} missing" for s in range(1, FIT_STEPS + 1) if s not in steps]
    return faults


# ---------------------------------------------------------------------------- the parent


@dataclass
class JobFigures:
    job: str
    kills: int = 0
    resumes: int = 0
    rounds: int = 0
    landed: Counter = field(default_factory=Counter)
    half_written: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _start(job: str, folder: Path, log) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    worker = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "child", job, str(folder)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    line = worker.stdout.readline()
    if READY not in line:
        worker.wait()
        raise SystemExit(f"the {job} child did not start (exit {worker.returncode}); see {log.name}")
    return worker, time.monotonic()


def _finish(worker: subprocess.Popen, job: str, log) -> None:
    worker.stdout.read()
    if worker.wait() != 0:
        raise SystemExit(f"the {job} child failed (exit {worker.returncode}); see {log.name}")


def reference(job: str, folder: Path, log) -> tuple[dict[str, str], float]:
    """The uninterrupted run's outputs and how long its work took after start-up."""
    worker, started = _start(job, folder, log)
    _finish(worker, job, log)
    return outputs(folder, job), time.monotonic() - started


def _draw_kill(rng: random.Random, job: str, folder: Path, duration: float, step: int | None):
    """When to kill the child just started: a predicate on (folder, seconds since it was ready).

    "moment": a moment of the work left (less a margin, so the kill lands before the end);
    "write": the first moment a checkpoint or shard is being written (for the fit: from global step
    `step` on); "step" (the fit): a random moment of global step `step`.
    """
    mode = rng.choice(["step", "step", "write", "moment"] if job == "fit" else ["moment", "moment", "write"])
    if job == "fit" and step is None:  # every step is trained; only the finishing is left
        mode = "moment"
    if mode == "moment":
        moment = rng.uniform(0.0, 0.8 * duration * (1.0 - _progress(folder, job)))
        return lambda where, elapsed: elapsed >= moment
    if job == "cache":
        return lambda where, elapsed: _writing(where, job)
    into = rng.uniform(0.0, 0.03)  # seconds into the step (a step takes a few hundredths here)
    reached: list[float] = []

    def at_step(where: Path, elapsed: float) -> bool:
        position = _position(where)
        # step `step` runs once `step - 1` are done and the checkpoint after them (if any) is written
        if not reached and position is not None and position[0] != "-" and position[1] >= step - 1:
            if mode == "write" or not _writing(where, job):
                reached.append(elapsed)
        if mode == "write":
            return bool(reached) and _writing(where, job)
        return bool(reached) and elapsed >= reached[0] + into

    return at_step


def _fit_targets(rng: random.Random, kills: int) -> list[int]:
    """The global steps a fit round's kills aim at, ascending: spread evenly over both stages."""
    return sorted(rng.sample(range(1, FIT_STEPS + 1), min(kills, KILLS_PER_ROUND)))


def soak(job: str, kills: int, rng: random.Random, work: Path, log) -> JobFigures:
    figures = JobFigures(job)
    began = time.monotonic()
    expected, duration = reference(job, work / f"{job}-reference", log)
    while figures.kills < kills:
        figures.rounds += 1
        folder = work / f"{job}-round-{figures.rounds}"
        starts = 0
        targets = _fit_targets(rng, kills - figures.kills) if job == "fit" else []
        while True:
            (folder / "position").unlink(missing_ok=True)
            worker, started = _start(job, folder, log)
            starts += 1
            done = round(_progress(folder, job) * FIT_STEPS)
            while targets and targets[0] <= done:  # a kill landed later than aimed: that target is passed
                targets.pop(0)
            step = targets.pop(0) if targets else None
            kill_at = None
            if figures.kills < kills and (job == "cache" or starts <= KILLS_PER_ROUND):
                kill_at = _draw_kill(rng, job, folder, duration, step)
            while worker.poll() is None and kill_at is not None:
                if kill_at(folder, time.monotonic() - started):
                    os.kill(worker.pid, signal.SIGKILL)
                    worker.wait()
                    break
                time.sleep(0.001)
            if worker.returncode == -signal.SIGKILL:
                figures.kills += 1
                figures.landed[_landing(folder, job)] += 1
                figures.half_written += [f"{folder.name}/{name}" for name in half_written(folder)]
                continue
            _finish(worker, job, log)
            break
        figures.resumes += starts - 1
        got = outputs(folder, job)
        figures.mismatches += [
            f"{folder.name}/{name}" for name in sorted(set(expected) | set(got)) if expected.get(name) != got.get(name)
        ]
        if job == "fit":
            figures.mismatches += [f"{folder.name}: loss log {fault}" for fault in loss_log_faults(folder)]
        if not figures.mismatches:  # a round that differs stays on disk (with --work) to be looked at
            shutil.rmtree(folder)
    figures.seconds = time.monotonic() - began
    return figures


def run_soak(fit_kills: int = 16, cache_kills: int = 8, seed: int = 0, work: Path | None = None) -> list[JobFigures]:
    rng = random.Random(seed)
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="compress-soak-")) if own else Path(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        with open(work / "children.log", "w") as log:
            return [soak("fit", fit_kills, rng, work, log), soak("cache", cache_kills, rng, work, log)]
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def print_table(results: list[JobFigures], seed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"kill soak (seed {seed}): SIGKILL, resume, compare with an uninterrupted run")
    for column in (
        "job",
        "kills",
        "where they landed",
        "resumes",
        "finished runs",
        "half-written files",
        "mismatches",
        "seconds",
    ):
        table.add_column(column, justify="left" if column in ("job", "where they landed") else "right")
    for r in results:
        landed = ", ".join(f"{where} {n}" for where, n in sorted(r.landed.items()))
        table.add_row(
            r.job,
            str(r.kills),
            landed,
            str(r.resumes),
            str(r.rounds),
            str(len(r.half_written)),
            str(len(r.mismatches)),
            f"{r.seconds:.0f}",
        )
    console = Console(width=150)
    console.print(table)
    for r in results:
        for problem in r.half_written + r.mismatches:
            console.print(f"[red]{r.job}: {problem}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        child(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-kills", type=int, default=16, help="kills in the two-stage fit")
    parser.add_argument("--cache-kills", type=int, default=8, help="kills in the teacher-cache build")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments and kinds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--work", type=Path, help="keep the runs and the children's log here (default: a temporary folder, removed)"
    )
    args = parser.parse_args(argv)
    results = run_soak(args.fit_kills, args.cache_kills, args.seed, args.work)
    print_table(results, args.seed)
    if args.json:
        from compress.files import write_json_atomically

        write_json_atomically(
            args.json,
            {
                "seed": args.seed,
                "jobs": [
                    {
                        "job": r.job,
                        "kills": r.kills,
                        "landed": dict(r.landed),
                        "resumes": r.resumes,
                        "finished_runs": r.rounds,
                        "half_written": r.half_written,
                        "mismatches": r.mismatches,
                        "seconds": round(r.seconds, 1),
                    }
                    for r in results
                ],
            },
        )
    return 1 if any(r.half_written or r.mismatches for r in results) else 0


if __name__ == "__main__":
    from compress import quiet

    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        sys.exit(main())
