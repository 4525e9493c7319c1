"""Run a bundle's tower exports in this process or in a pool of worker processes.

Lowering to ExecuTorch and converting to Core ML are single-threaded Python passes over the
graph (an int8 image tower's lowering takes one to two minutes on a server core), so with `workers=N` the
jobs run in N spawned processes at once. Each worker looks its target up by name in the plugin
registry, as this process did, so a third-party target exports there too. Results come back in
the order the jobs were given, whatever order they finish in.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compress.errors import CompressError
from compress.protocols import TowerExport


@dataclass(frozen=True)
class ExportJob:
    """One tower at one precision for one target (by its registered name)."""

    target: str
    job: TowerExport

    @property
    def label(self) -> str:
        return f"{self.target} {self.job.precision} ({self.job.tower})"

    @property
    def group(self) -> str:
        """The target and precision, as the export report adds up their seconds."""
        return f"{self.target} {self.job.precision}"

    @property
    def call(self) -> str:
        """The target call this job is, as errors name it."""
        return f"export_tower ({self.job.tower}, {self.job.precision})"


@dataclass(frozen=True)
class JobResult:
    entries: list[dict[str, Any]]
    seconds: float


def _run_job(target, job: TowerExport, folder: Path) -> JobResult:
    started = time.perf_counter()
    entries = target.export_tower(job, folder)
    return JobResult(entries=entries, seconds=time.perf_counter() - started)


def _start_worker(quiet_output: bool, threads: int) -> None:
    """A worker filters third-party output as its parent does (`compress.quiet`) and uses its share of threads."""
    if quiet_output:
        from compress import quiet

        quiet.install(verbose=False)
    torch.set_num_threads(threads)


def _export_in_worker(target_name: str, job: TowerExport, folder: str) -> JobResult:
    from compress.bundle.plugins import load_target

    return _run_job(load_target(target_name), job, Path(folder))


def run_export_jobs(
    jobs: Sequence[ExportJob],
    folder: Path,
    targets: dict[str, Any],
    workers: int,
    on_done: Callable[[ExportJob, JobResult], None],
    errors: Callable[[Any, str], Any],
) -> list[JobResult]:
    """Each job's result, in job order, from `workers` processes (at most one per job: the caller
    sizes it). `targets` maps names to this process's instances (used when `workers` is 1);
    `on_done` is called as each job finishes; `errors(target, call)` is the context that turns a
    target's own exception into a CompressError naming it."""
    if workers <= 1 or len(jobs) < 2:
        results = []
        for job in jobs:
            with errors(targets[job.target], job.call):
                result = _run_job(targets[job.target], job.job, folder)
            on_done(job, result)
            results.append(result)
        return results
    return _run_in_pool(jobs, folder, targets, workers, on_done, errors)


def _run_in_pool(jobs, folder, targets, workers, on_done, errors) -> list[JobResult]:
    from compress import quiet

    threads = max(1, torch.get_num_threads() // workers)  # the workers share this process's cores
    context = multiprocessing.get_context("spawn")  # never fork a process whose torch has started threads
    results: list[JobResult | None] = [None] * len(jobs)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(quiet.is_quiet(), threads)
    ) as pool:
        futures = {pool.submit(_export_in_worker, job.target, job.job, str(folder)): i for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                index = futures[future]
                job = jobs[index]
                with errors(targets[job.target], job.call):
                    try:
                        results[index] = future.result()
                    except BrokenProcessPool:
                        raise CompressError(
                            f"the export process running {job.label} ended without a result: it was killed, ran out "
                            "of memory or could not start (a script calling export_bundle with workers > 1 needs "
                            "an `if __name__ == '__main__':` guard); run the export again with fewer workers"
                        ) from None
                on_done(job, results[index])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results
