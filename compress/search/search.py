"""Hardware-aware student search: measure every candidate tower, keep those within budget, rank them
by a short distillation proxy, pair image and text towers under the size budget, and choose.

    result = run_search(Budgets(image_latency_ms=15, text_latency_ms=10, size_mb=30),
                        load_space(default_space_path("image")), load_space(default_space_path("text")),
                        teacher=compress.load_teacher("demo"), out="runs/search")
    result.chosen, result.front, result.paths["student"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from compress.console import make_console
from compress.errors import CompressError
from compress.search.lut import LatencyTable, write_lut_template
from compress.search.measure import (
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    LatencyCache,
    TowerMeasurement,
    library_versions,
    machine_description,
    measure_candidate,
)
from compress.search.pareto import Pair, pair_candidates, pareto_front, pick
from compress.search.proxy import ProxyCache, ProxyData, ProxyResult, ProxySettings, proxy_candidate
from compress.search.report import candidates_table, front_table, plot_search, write_json
from compress.search.signatures import export_program, op_signatures
from compress.search.space import Candidate, SearchSpace
from compress.search.student_file import chosen_student_config, write_student_config
from compress.search.towers import build_tower, example_input

STUDENT_FILE = "chosen_student.yaml"


@dataclass
class Budgets:
    """Per-family latency limits (ms, batch 1) and the limit on both `.pte` files together (MB); None is no limit."""

    image_latency_ms: float | None = None
    text_latency_ms: float | None = None
    size_mb: float | None = None

    def __post_init__(self):
        for name, value in vars(self).items():
            if value is not None and not value > 0:
                raise CompressError(f"budget --{name.replace('_', '-')} must be > 0, not {value!r}")

    def latency_for(self, family: str) -> float | None:
        return self.image_latency_ms if family == "image" else self.text_latency_ms


@dataclass
class CandidateResult:
    """A candidate with its measurement, the latency the budgets use, its status and its proxy scores."""

    candidate: Candidate
    measurement: TowerMeasurement
    latency_ms: float
    latency_source: str  # "runtime" (measured here) or "lut" (the operator table)
    cache_hit: bool
    status: str = "ok"
    lut_unknown: dict[str, int] = field(default_factory=dict)
    proxy: ProxyResult | None = None
    proxy_cache_hit: bool = False

    @property
    def name(self) -> str:
        return self.candidate.name

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {
            **self.candidate.to_dict(),
            "architecture": self.candidate.architecture,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 4),
            "latency_source": self.latency_source,
            "runtime_latency_ms": round(m.latency_ms, 4),
            "runtime_runs_ms": m.runs_ms,
            "lut_unknown_ops": self.lut_unknown,
            "params": m.params,
            "pte_bytes": m.pte_bytes,
            "delegation": m.delegation,
            "measurement_cached": self.cache_hit,
            "proxy": self.proxy.to_dict() if self.proxy else None,
            "proxy_cached": self.proxy_cache_hit,
        }


@dataclass
class SearchResult:
    image: list[CandidateResult]
    text: list[CandidateResult]
    pairs: list[Pair]
    front: list[Pair]
    chosen: Pair
    student_config: dict[str, Any]
    paths: dict[str, Path]
    report: dict[str, Any]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"),
        TimeElapsedColumn(),
        console=console,
    )


def measure_space(
    space: SearchSpace, cache: LatencyCache | None, workdir: Path, warmup: int, repeats: int, refresh: bool, console: Console
) -> list[tuple[Candidate, TowerMeasurement, bool]]:
    """Measure (or read from the cache) every candidate of the space, with a progress bar."""
    out = []
    with _progress(console) as progress:
        task = progress.add_task(f"measuring {space.family} towers", total=len(space), current="")
        for candidate in space.candidates:
            progress.update(task, current=candidate.name)
            measurement, hit = measure_candidate(candidate, cache, workdir, warmup, repeats, refresh)
            out.append((candidate, measurement, hit))
            progress.advance(task)
        progress.update(task, current="")
    return out


def apply_budgets(family: str, measured, budgets: Budgets, lut: LatencyTable | None, lut_unknown: str) -> list[CandidateResult]:
    """A result per candidate with the latency the budgets use and its status ("ok" or why it is out)."""
    limit = budgets.latency_for(family)
    results = []
    for candidate, measurement, hit in measured:
        if lut is not None:
            from_table = lut.latency(measurement.ops, what=f"{family} candidate {candidate.name}", on_unknown=lut_unknown)
            result = CandidateResult(candidate, measurement, from_table.latency_ms, "lut", hit, lut_unknown=from_table.unknown)
        else:
            result = CandidateResult(candidate, measurement, measurement.latency_ms, "runtime", hit)
        reasons = []
        if limit is not None and result.latency_ms > limit:
            reasons.append(f"over {limit:g} ms")
        if budgets.size_mb is not None and measurement.pte_mb > budgets.size_mb:
            reasons.append(f"over {budgets.size_mb:g} MB")
        result.status = ", ".join(reasons) or "ok"
        results.append(result)
    kept = [r for r in results if r.status == "ok"]
    if not kept:
        fastest = min(results, key=lambda r: r.latency_ms)
        smallest = min(results, key=lambda r: r.measurement.pte_bytes)
        option = f"--{family}-latency-ms {limit:g}" if limit is not None else "no latency limit"
        option += f", --size-mb {budgets.size_mb:g}" if budgets.size_mb is not None else ""
        raise CompressError(
            f"no {family} candidate meets the budgets ({option}): the fastest, "
            f"{fastest.name}, takes {fastest.latency_ms:.2f} ms and the smallest, {smallest.name}, is "
            f"{smallest.measurement.pte_mb:.2f} MB"
        )
    return results


def drop_unpairable(images: list[CandidateResult], texts: list[CandidateResult], size_mb: float | None) -> None:
    """Mark candidates that fit in no image + text pair under `size_mb`; refuse when no pair fits at all."""
    if size_mb is None:
        return
    images_ok = [r for r in images if r.status == "ok"]
    texts_ok = [r for r in texts if r.status == "ok"]
    fits = [(i, t) for i in images_ok for t in texts_ok if i.measurement.pte_mb + t.measurement.pte_mb <= size_mb]
    if not fits:
        smallest = min(r.measurement.pte_mb for r in images_ok) + min(r.measurement.pte_mb for r in texts_ok)
        raise CompressError(
            f"no image + text pair fits --size-mb {size_mb:g}: the smallest pair within the latency budgets is {smallest:.2f} MB"
        )
    paired = {id(r) for pair in fits for r in pair}
    for result in images_ok + texts_ok:
        if id(result) not in paired:
            result.status = f"in no pair under {size_mb:g} MB"


def run_proxies(
    results: list[CandidateResult], data: ProxyData, cache: ProxyCache | None, workdir: Path, refresh: bool, console: Console
) -> None:
    kept = [r for r in results if r.status == "ok"]
    if not kept:
        return
    with _progress(console) as progress:
        task = progress.add_task(f"proxy {kept[0].candidate.family} towers", total=len(kept), current="")
        for result in kept:
            progress.update(task, current=result.name)
            run_dir = workdir / f"{result.candidate.family}-{result.name}"
            result.proxy, result.proxy_cache_hit = proxy_candidate(result.candidate, data, cache, run_dir, refresh)
            progress.advance(task)
        progress.update(task, current="")


def run_search(
    budgets: Budgets,
    image_space: SearchSpace,
    text_space: SearchSpace,
    teacher,
    out: str | Path,
    proxy: ProxySettings | None = None,
    lut: LatencyTable | None = None,
    lut_unknown: str = "error",
    rank_by: str = "val_loss",
    pick_rule: str = "best",
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    latency_cache: LatencyCache | None = None,
    proxy_cache: ProxyCache | None = None,
    refresh: bool = False,
    console: Console | None = None,
) -> SearchResult:
    """Search `image_space` x `text_space` under `budgets`; writes search.json, search.png and chosen_student.yaml.

    `teacher` is a teacher, or a function of no arguments that loads one (called only once some
    candidates are within budget). A budget that excludes every candidate of a family, or a size
    budget no pair fits, is a `CompressError` naming the closest candidate.
    """
    from compress.search.pareto import PICK_RULES, RANK_BY

    console = console or make_console()
    if rank_by not in RANK_BY:
        raise CompressError(f"rank_by must be one of {', '.join(RANK_BY)}, not {rank_by!r}")
    if pick_rule not in PICK_RULES:
        raise CompressError(f"pick must be one of {', '.join(PICK_RULES)}, not {pick_rule!r}")
    if image_space.family != "image" or text_space.family != "text":
        raise CompressError(f"need an image space and a text space, got {image_space.family} and {text_space.family}")
    if image_space.embed_dim != text_space.embed_dim:
        raise CompressError(
            f"{image_space.source} has embed_dim {image_space.embed_dim} but {text_space.source} has "
            f"{text_space.embed_dim}; a student's towers share one embedding size"
        )
    proxy = proxy or ProxySettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    results = {}
    for space in (image_space, text_space):
        measured = measure_space(space, latency_cache, out / "pte", warmup, repeats, refresh, console)
        results[space.family] = apply_budgets(space.family, measured, budgets, lut, lut_unknown)

    drop_unpairable(results["image"], results["text"], budgets.size_mb)

    if callable(teacher) and not hasattr(teacher, "encode_images"):
        teacher = teacher()  # loaded only now that the budgets leave candidates to rank
    data = ProxyData(teacher, proxy, out / "proxy")
    for family in ("image", "text"):
        run_proxies(results[family], data, proxy_cache, out / "proxy", refresh, console)

    kept = {family: [r for r in results[family] if r.status == "ok"] for family in results}
    pairs = pair_candidates(kept["image"], kept["text"], budgets.size_mb, rank_by)
    front = pareto_front(pairs, cost=lambda p: p.latency_ms, quality=lambda p: p.quality)
    chosen = pick(front, pick_rule)

    config = chosen_student_config(chosen.image.candidate, chosen.text.candidate)
    paths = {"json": out / "search.json", "plot": out / "search.png", "student": out / STUDENT_FILE}
    header = (
        f"Student chosen by `compress search` (pick: {pick_rule}, rank by: {rank_by}).\n"
        f"image {chosen.image.name}: {chosen.image.latency_ms:.2f} ms ({chosen.image.latency_source}), "
        f"text {chosen.text.name}: {chosen.text.latency_ms:.2f} ms, both .pte files {chosen.size_mb:.2f} MB.\n"
        f"Use: compress.build_student(compress.search.read_student_config(this file)), or\n"
        f"  python -m compress recipe dc_clip --set student={paths['student']} "
        f"--set tokenizer.vocab_size={config['tokenizer_vocab_size']}"
    )
    write_student_config(paths["student"], config, header)

    report = {
        "budgets": vars(budgets),
        "rank_by": rank_by,
        "pick": pick_rule,
        "latency": {
            "source": "lut" if lut is not None else "runtime",
            "lut": lut.source if lut else None,
            "lut_device": lut.label if lut else None,
            "lut_unknown": lut_unknown,
            "warmup": warmup,
            "repeats": repeats,
            "machine": machine_description(),
            **library_versions(),
        },
        "proxy": {**proxy.to_dict(), "teacher": getattr(teacher, "fingerprint", None), "data": data.description},
        "spaces": {"image": image_space.source, "text": text_space.source},
        "candidates": {family: [r.to_dict() for r in rs] for family, rs in results.items()},
        "pairs": [p.to_dict() for p in pairs],
        "front": [p.to_dict() for p in front],
        "chosen": {**chosen.to_dict(), "student_config": config, "file": str(paths["student"])},
    }
    write_json(paths["json"], report)
    plot_search(paths["plot"], results["image"], results["text"], pairs, front, chosen, rank_by, budgets)

    for family in ("image", "text"):
        console.print(candidates_table(family, results[family], budgets.latency_for(family), budgets.size_mb))
    console.print(front_table(front, chosen, rank_by))
    # soft_wrap: paths and the command stay on one line, so they can be copied
    console.print(f"chosen student: {paths['student']}\nreport: {paths['json']}, plot: {paths['plot']}", soft_wrap=True)
    console.print(
        f"train it: python -m compress recipe dc_clip --set student={paths['student']} "
        f"--set tokenizer.vocab_size={config['tokenizer_vocab_size']}",
        soft_wrap=True,
    )
    return SearchResult(results["image"], results["text"], pairs, front, chosen, config, paths, report)


def tower_op_signatures(candidate: Candidate, cache: LatencyCache | None = None) -> dict[str, int]:
    """The candidate's operator signatures: from its cached measurement, else from a fresh `torch.export`."""
    if cache is not None:
        cached = cache.get(candidate)
        if cached is not None:
            return dict(cached.ops)
    return dict(op_signatures(export_program(build_tower(candidate), example_input(candidate))))


def write_space_lut_template(
    path: str | Path,
    spaces: list[SearchSpace],
    cache: LatencyCache | None = None,
    device: str = "",
    console: Console | None = None,
) -> Path:
    """A latency-table template covering every operator signature of every candidate in `spaces`."""
    console = console or make_console()
    ops_by_tower = {}
    with _progress(console) as progress:
        total = sum(len(space) for space in spaces)
        task = progress.add_task("exporting towers", total=total, current="")
        for space in spaces:
            for candidate in space.candidates:
                progress.update(task, current=candidate.name)
                ops_by_tower[f"{candidate.family}:{candidate.name}"] = tower_op_signatures(candidate, cache)
                progress.advance(task)
    runtime = f"executorch-{library_versions()['executorch']}-xnnpack"
    written = write_lut_template(path, ops_by_tower, device=device, runtime=runtime)
    count = len({sig for ops in ops_by_tower.values() for sig in ops})
    console.print(
        f"{written}: {count} operator signatures of {len(ops_by_tower)} towers; fill in each value in ms", soft_wrap=True
    )
    return written
