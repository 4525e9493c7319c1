"""Measured latency and size of a tower: export, lower to ExecuTorch with XNNPACK, run the `.pte` here.

    measurement, hit = measure_candidate(candidate, LatencyCache(), workdir="runs/search/pte")
    measurement.latency_ms, measurement.pte_bytes, measurement.params, measurement.ops

Latency is the median of `repeats` timed runs at batch 1 in the ExecuTorch runtime, after
`warmup` untimed runs. Results are cached on disk (`<cache_dir>/latency/<key>.json`) under the
tower's architecture, the torch and ExecuTorch versions and this machine, so a search measures
each architecture once per machine.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shutil
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from compress.errors import CompressError
from compress.paths import cache_dir
from compress.quiet import native_stderr
from compress.search.settings import DEFAULT_REPEATS, DEFAULT_WARMUP
from compress.search.signatures import export_program, op_signatures
from compress.search.space import Candidate
from compress.search.store import JsonStore
from compress.search.towers import build_tower, example_input

# Bump when the way latency is measured changes, so older cache records are not reused.
MEASURE_PROTOCOL = 1


def library_versions() -> dict[str, str]:
    return {"torch": torch.__version__, "executorch": importlib.metadata.version("executorch")}


# The CPU features XNNPACK's int8 kernels pick from (x86 flags, Arm `Features`), weakest first: int8
# speed-ups depend on them far more than fp32 ones do (an AVX2-only core multiplies int8 through
# 16-bit lanes, a VNNI or dot-product core in one instruction), so a ratio is quoted with them.
# The names are Linux's /proc/cpuinfo spellings.
INT8_CPU_FEATURES = ("avx2", "avx512bw", "avx_vnni", "avx512_vnni", "asimddp", "i8mm", "sve2")


@functools.cache  # read once per process: every latency cache key asks for the machine
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return info.read()
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def int8_features(cpuinfo: str) -> list[str]:
    """Which of INT8_CPU_FEATURES the first core's `flags` (x86) or `Features` (Arm) line lists."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            present = set(value.split())
            return [feature for feature in INT8_CPU_FEATURES if feature in present]
    return []


def runtime_threads() -> int | None:
    """Threads in the ExecuTorch runtime's pool (XNNPACK runs on it), when the runtime reports it."""
    try:
        from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count

        with warnings.catch_warnings():  # the call is marked experimental; asking is harmless
            warnings.simplefilter("ignore")
            return int(_threadpool_get_thread_count())
    except (ImportError, AttributeError, RuntimeError):
        return None


def machine_description() -> dict[str, Any]:
    """What identifies this machine for latency: OS, architecture, CPU model and int8 features, cores, runtime threads."""
    cpuinfo = _cpuinfo()
    return {
        "system": platform.system(),
        "arch": platform.machine(),
        "cpu": cpu_model(cpuinfo),
        "int8_features": int8_features(cpuinfo),
        "cores": os.cpu_count(),
        "runtime_threads": runtime_threads(),
    }


@dataclass
class TowerMeasurement:
    """One lowered tower: parameters, `.pte` bytes, median latency, timed runs and operator signatures."""

    params: int
    pte_bytes: int
    latency_ms: float
    runs_ms: list[float]
    warmup: int
    ops: dict[str, int]
    delegation: dict[str, Any] = field(default_factory=dict)
    lower_seconds: float = 0.0

    @property
    def pte_mb(self) -> float:
        return self.pte_bytes / 1e6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TowerMeasurement:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def time_pte(
    path: str | Path, example: torch.Tensor, warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS
) -> tuple[list[float], torch.Tensor]:
    """(run times in ms, the output of the last run) of a `.pte`'s forward in the ExecuTorch runtime."""
    from executorch.runtime import Runtime

    if repeats < 1 or warmup < 0:
        raise CompressError(f"latency needs repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    try:
        with native_stderr():  # the runtime's first load probes the CPU and logs what it cannot read
            method = Runtime.get().load_program(Path(path)).load_method("forward")
    except Exception as exc:  # the runtime raises its own RuntimeError/ValueError kinds
        raise CompressError(f"{path}: the ExecuTorch runtime cannot load it ({exc})") from None
    inputs = [example.contiguous()]
    for _ in range(warmup):
        method.execute(inputs)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = method.execute(inputs)
        runs.append((time.perf_counter() - start) * 1000.0)
    return runs, outputs[0].clone()


LATENCY_TARGET = "executorch"  # the registered target whose programs the search times


def _write_program(module: torch.nn.Module, example: torch.Tensor, pte_path: Path) -> dict:
    """Lower `module` through the registered ExecuTorch target (`Target.export_tower`) into `pte_path`;
    its manifest entry (with the delegation summary)."""
    from compress.bundle.plugins import load_target
    from compress.protocols import TowerExport

    target = load_target(LATENCY_TARGET)
    tower = "image" if example.is_floating_point() else "text"
    with torch.no_grad():
        embed_dim = int(module(example).shape[-1])
    staging = pte_path.with_name(f".{pte_path.name}.export")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        (entry,) = target.export_tower(
            TowerExport(tower=tower, module=module, example=example, precision="fp32", embed_dim=embed_dim), staging
        )
        (staging / entry["file"]).replace(pte_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def measure_module(
    module: torch.nn.Module,
    example: torch.Tensor,
    pte_path: str | Path,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
) -> TowerMeasurement:
    """Export `module` at the example's shape, lower it with XNNPACK into `pte_path`, and time it."""
    module = module.eval()
    pte_path = Path(pte_path)
    started = time.perf_counter()
    ops = op_signatures(export_program(module, example))
    entry = _write_program(module, example, pte_path)
    lowered = time.perf_counter() - started
    runs, _ = time_pte(pte_path, example, warmup, repeats)
    return TowerMeasurement(
        params=sum(p.numel() for p in module.parameters()),
        pte_bytes=pte_path.stat().st_size,
        latency_ms=statistics.median(runs),
        runs_ms=[round(r, 4) for r in runs],
        warmup=warmup,
        ops=dict(sorted(ops.items())),
        delegation=dict(entry.get("delegation", {})),
        lower_seconds=round(lowered, 2),
    )


class LatencyCache:
    """Measurements on disk, keyed by architecture + torch and ExecuTorch versions + machine."""

    def __init__(self, folder: str | Path | None = None):
        self.store = JsonStore(Path(folder) if folder is not None else cache_dir() / "search" / "latency")

    @property
    def folder(self) -> Path:
        return self.store.folder

    def key(self, candidate: Candidate) -> dict[str, Any]:
        return {
            "family": candidate.family,
            "architecture": candidate.architecture,
            "versions": library_versions(),
            "machine": machine_description(),
            "protocol": MEASURE_PROTOCOL,
        }

    def path_for(self, candidate: Candidate) -> Path:
        return self.store.path_for(self.key(candidate))

    def get(self, candidate: Candidate) -> TowerMeasurement | None:
        record = self.store.get(self.key(candidate))
        if record is None:
            return None
        try:
            return TowerMeasurement.from_dict(record["measurement"])
        except (KeyError, TypeError):
            return None

    def put(self, candidate: Candidate, measurement: TowerMeasurement) -> Path:
        return self.store.put(self.key(candidate), {"candidate": candidate.name, "measurement": measurement.to_dict()})


def pte_path(workdir: str | Path, candidate: Candidate) -> Path:
    """Where `measure_candidate` writes the candidate's program."""
    return Path(workdir) / f"{candidate.family}-{candidate.name}.pte"


def measure_candidate(
    candidate: Candidate,
    cache: LatencyCache | None,
    workdir: str | Path,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    refresh: bool = False,
    seed: int = 0,
) -> tuple[TowerMeasurement, bool]:
    """(measurement, cache hit). A miss (or `refresh`) lowers the tower into `workdir/<name>.pte`."""
    if cache is not None and not refresh:
        cached = cache.get(candidate)
        if cached is not None:
            return cached, True
    module = build_tower(candidate, seed=seed)
    pte = pte_path(workdir, candidate)
    try:
        measurement = measure_module(module, example_input(candidate, seed=seed), pte, warmup, repeats)
    except CompressError as exc:
        raise CompressError(f"{candidate.family} candidate {candidate.name}: {exc}") from None
    except Exception as exc:  # torch.export or the lowering refusing the architecture
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CompressError(
            f"{candidate.family} candidate {candidate.name} does not export and lower to ExecuTorch "
            f"({type(exc).__name__}: {reason})"
        ) from exc
    if cache is not None:
        cache.put(candidate, measurement)
    return measurement, False
