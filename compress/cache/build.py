"""Building a teacher cache: each sample's teacher embeddings computed once, in resumable shards, across ranks.

    result = build_cache(teacher, open_data("demo:train"), "caches/demo", augmentation="crop-flip", views=4)

The samples are cut into shards of `shard_size`; rank r of a world of size w builds shards
r, r + w, ... (RANK / WORLD_SIZE from the environment, as `torchrun` sets them). A shard is
published by an atomic rename, so a killed build keeps its finished shards and a rerun builds only
the missing ones. Under `torchrun` (a process group can be made from MASTER_ADDR) the ranks meet
at a gloo barrier and rank 0 writes the index; without a process group every rank writes its
shards and whichever rank finds all shards present writes the index (`finalize_cache` does it
by hand).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors import safe_open
from torch.utils.data import DataLoader, Dataset

from compress.cache import layout
from compress.cache.augment import (
    Augmentation,
    apply_augmentation,
    draw_view_params,
    make_augmentation,
    params_to_tensors,
)
from compress.cache.presets import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE
from compress.data.policy import drain_journal
from compress.errors import CompressError
from compress.files import file_sha256, save_tensors_atomically, write_json_atomically
from compress.protocols import check_teacher

# ---------------------------------------------------------------------- ranks


@dataclass(frozen=True)
class RankInfo:
    """This process's place among the builders; `group` is true when a torch.distributed group joins them."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: bool = False
    owns_group: bool = False  # this build made the group, so it tears it down at the end


def rank_from_env(environ: dict[str, str] | None = None) -> RankInfo:
    """RANK, WORLD_SIZE and LOCAL_RANK as `torchrun` sets them (a single process when unset)."""
    env = os.environ if environ is None else environ
    try:
        rank = int(env.get("RANK", 0))
        world_size = int(env.get("WORLD_SIZE", 1))
        local_rank = int(env.get("LOCAL_RANK", 0))
    except ValueError:
        raise CompressError(
            f"RANK/WORLD_SIZE/LOCAL_RANK must be integers, not {env.get('RANK')!r}/"
            f"{env.get('WORLD_SIZE')!r}/{env.get('LOCAL_RANK')!r}"
        ) from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise CompressError(f"RANK {rank} is not in a world of WORLD_SIZE {world_size}")
    return RankInfo(rank, world_size, local_rank)


def join_process_group(info: RankInfo) -> RankInfo:
    """Join (or reuse) a gloo process group when torchrun's rendezvous variables are set."""
    import torch.distributed as dist

    if info.world_size == 1 or not dist.is_available():
        return info
    if dist.is_initialized():
        return RankInfo(dist.get_rank(), dist.get_world_size(), info.local_rank, group=True)
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        return info  # ranks without a rendezvous: each builds its shards, the last one writes the index
    dist.init_process_group("gloo", rank=info.rank, world_size=info.world_size)
    return RankInfo(info.rank, info.world_size, info.local_rank, group=True, owns_group=True)


# ---------------------------------------------------------------------- the plan


def describe_teacher(teacher) -> dict[str, Any]:
    fingerprint = getattr(teacher, "fingerprint", None)
    if not fingerprint:
        raise CompressError(
            f"teacher {getattr(teacher, 'name', type(teacher).__name__)!r} has no fingerprint; a cache cannot be keyed to it"
        )
    image, text = bool(teacher.has_image_tower), bool(teacher.has_text_tower)
    if not (image or text):
        raise CompressError(f"teacher {fingerprint} has neither an image nor a text tower")
    return {
        "name": getattr(teacher, "name", type(teacher).__name__),
        "fingerprint": str(fingerprint),
        "embed_dim": int(teacher.embed_dim),
        "image": image,
        "text": text,
    }


def dataset_digest(dataset) -> str:
    digest = getattr(dataset, "digest", None)
    if not callable(digest):
        raise CompressError(
            f"dataset {type(dataset).__name__} has no digest(); a cache cannot tell whether it still matches the data"
        )
    return str(digest())


def make_plan(teacher, dataset, augmentation: Augmentation, shard_size: int) -> dict[str, Any]:
    """Everything that decides the cache's contents (the batch size and the rank count do not)."""
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise CompressError(f"shard size must be a positive integer, not {shard_size!r}")
    size = len(dataset)
    if size == 0:
        raise CompressError("the dataset is empty: nothing to cache")
    return {
        "format": layout.CACHE_FORMAT,
        "version": layout.FORMAT_VERSION,
        "teacher": describe_teacher(teacher),
        "dataset": {"digest": dataset_digest(dataset), "size": size},
        "augmentation": augmentation.to_dict(),
        "shard_size": shard_size,
        "num_shards": len(layout.shard_ranges(size, shard_size)),
        "dtype": layout.STORE_DTYPE,
    }


def _differences(saved: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    out = []
    for key in ("teacher", "dataset", "augmentation", "shard_size", "dtype"):
        if saved.get(key) != plan[key]:
            if key == "teacher":
                out.append(f"teacher {saved.get(key, {}).get('fingerprint')} -> {plan[key]['fingerprint']}")
            elif key == "dataset":
                out.append(f"dataset digest {str(saved.get(key, {}).get('digest'))[:12]} -> {plan[key]['digest'][:12]}")
            else:
                out.append(f"{key} {saved.get(key)!r} -> {plan[key]!r}")
    return out


def prepare_folder(out: Path, plan: dict[str, Any]) -> None:
    """Write the plan into a new folder, or check that an existing build in `out` follows the same plan."""
    plan_file = out / layout.PLAN_FILE
    if plan_file.is_file():
        saved = layout.read_json(plan_file, "the build plan of a teacher cache")
        changed = _differences(saved, plan)
        if changed:
            raise CompressError(
                f"{out}: holds a teacher cache built with other settings ({'; '.join(changed)}); "
                "use another --out or delete the folder"
            )
        return
    if out.exists() and (not out.is_dir() or any(not p.name.endswith(".tmp") for p in out.iterdir())):
        raise CompressError(f"{out}: exists and is not a teacher cache; choose an empty or new folder")
    write_json_atomically(plan_file, plan)


# ---------------------------------------------------------------------- reading samples and their views


class _ViewSource(Dataset):
    """Item j: (dataset index, Sample or None, view params or None, the images the teacher embeds)."""

    def __init__(self, dataset, augmentation: Augmentation, indices: range):
        self.dataset, self.augmentation, self.indices = dataset, augmentation, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        index = self.indices[j]
        sample = self.dataset[index]
        if sample is None:
            return index, None, None, []
        if not self.augmentation.enabled:
            return index, sample, None, [sample.image]
        views = range(self.augmentation.views)
        params = [draw_view_params(self.augmentation, sample.image.size, index, v) for v in views]
        return index, sample, params, [apply_augmentation(sample.image, p) for p in params]


def _collate(items):
    return list(items), drain_journal()


# ---------------------------------------------------------------------- building


@dataclass
class BuildResult:
    """What one process did: shards built and kept, samples embedded, time spent, and whether the index exists."""

    out: Path
    rank: int
    world_size: int
    shards_built: list[int] = field(default_factory=list)
    shards_kept: list[int] = field(default_factory=list)
    samples: int = 0  # samples embedded by this process in this run (skipped ones excluded)
    views: int = 0  # images embedded (samples x views)
    skipped: int = 0
    seconds: float = 0.0
    complete: bool = False
    waiting_for: list[int] = field(default_factory=list)  # shards other ranks have not published yet

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


def build_cache(
    teacher,
    data,
    out: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    shard_size: int = DEFAULT_SHARD_SIZE,
    augmentation: str | dict | Augmentation | None = "none",
    views: int | None = None,
    seed: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
    console: Console | None = None,
) -> BuildResult:
    """Embed every sample of `data` with `teacher` into the cache folder `out`; returns what this process did.

    `rank`/`world_size` default to the environment (RANK, WORLD_SIZE); under torchrun the ranks
    synchronise through a gloo group. A rerun after a kill keeps the finished shards.
    """
    from compress.api import open_data

    console = console or Console(stderr=True)
    dataset = open_data(data) if isinstance(data, (str, Path, dict, list, tuple)) else data
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CompressError(f"batch size must be a positive integer, not {batch_size!r}")
    settings = make_augmentation(augmentation, views=views, seed=seed)
    info = rank_from_env() if rank is None and world_size is None else RankInfo(rank or 0, world_size or 1)
    if info.world_size < 1 or not 0 <= info.rank < info.world_size:
        raise CompressError(f"rank {info.rank} is not in a world of size {info.world_size}")
    info = join_process_group(info)
    out = Path(out).expanduser()
    teacher = check_teacher(teacher, "build_cache teacher")
    plan = make_plan(teacher, dataset, settings, shard_size)
    prepare_folder(out, plan)  # every rank writes the same plan when it is missing, or checks it
    digest = layout.plan_digest(plan)
    ranges = layout.shard_ranges(plan["dataset"]["size"], shard_size)
    mine = layout.shards_of_rank(len(ranges), info.rank, info.world_size)
    layout.clear_stale_temporaries(out, mine)

    result = BuildResult(out=out, rank=info.rank, world_size=info.world_size)
    todo = []
    for shard in mine:
        if _published(out, shard, digest):
            result.shards_kept.append(shard)
        else:
            todo.append(shard)
    started = time.perf_counter()
    total = sum(stop - start for shard in mine for start, stop in [ranges[shard]])
    done = total - sum(ranges[s][1] - ranges[s][0] for s in todo)
    label = f"caching rank {info.rank}/{info.world_size}" if info.world_size > 1 else "caching"
    with _progress(console, progress) as bar:
        task = bar.add_task(label, total=total, completed=done, rate="-")
        for shard in todo:
            start, stop = ranges[shard]
            embedded = _build_shard(
                teacher,
                dataset,
                settings,
                plan,
                digest,
                out,
                shard,
                range(start, stop),
                batch_size,
                num_workers,
                lambda n: bar.advance(task, n),
            )
            result.shards_built.append(shard)
            result.samples += embedded["samples"]
            result.views += embedded["views"]
            result.skipped += embedded["skipped"]
            elapsed = time.perf_counter() - started
            bar.update(task, rate=f"{result.samples / max(elapsed, 1e-9):.1f}")
    result.seconds = time.perf_counter() - started

    _barrier(info)
    if not info.group or info.rank == 0:
        missing = [s for s in range(len(ranges)) if not layout.shard_path(out, s).is_file()]
        if missing:
            result.waiting_for = missing
        elif info.rank == 0 or not (out / layout.INDEX_FILE).is_file():
            finalize_cache(out)
    _barrier(info)
    result.complete = (out / layout.INDEX_FILE).is_file()
    if info.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
    return result


def _barrier(info: RankInfo) -> None:
    if info.group:
        import torch.distributed as dist

        dist.barrier()


def _published(out: Path, shard: int, digest: str) -> bool:
    """True when shard `shard` is on disk and was built for this plan (a foreign one is an error)."""
    path = layout.shard_path(out, shard)
    if not path.is_file():
        return False
    meta = _shard_metadata(path)
    if meta.get("plan") != digest:
        raise CompressError(f"{path}: was built for another plan than {out / layout.PLAN_FILE}; delete it and rerun")
    return True


def _shard_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise CompressError(f"{path}: not a readable safetensors shard ({exc}); delete it and rerun") from None
    if meta.get("format") != layout.SHARD_FORMAT:
        raise CompressError(f"{path}: not a teacher cache shard (format {meta.get('format')!r})")
    return meta


@torch.no_grad()
def _build_shard(
    teacher, dataset, settings: Augmentation, plan, digest, out, shard, indices: range, batch_size: int, num_workers: int, advance
) -> dict[str, int]:
    n, views, dim = len(indices), settings.views, plan["teacher"]["embed_dim"]
    image = torch.zeros(n, views, dim, dtype=torch.float16) if plan["teacher"]["image"] else None
    text = torch.zeros(n, dim, dtype=torch.float16) if plan["teacher"]["text"] else None
    present = torch.zeros(n, dtype=torch.uint8)
    keys = [""] * n
    params_rows: list = [None] * n
    skips: list[tuple[str, str, str]] = []
    loader = DataLoader(
        _ViewSource(dataset, settings, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    counted = {"samples": 0, "views": 0, "skipped": 0}
    for items, journal in loader:
        skips.extend(journal)
        kept = [(index - indices.start, sample, params, images) for index, sample, params, images in items if sample is not None]
        counted["skipped"] += len(items) - len(kept)
        if kept:
            rows = torch.tensor([row for row, *_ in kept])
            present[rows] = 1
            for row, sample, params, _ in kept:
                keys[row] = sample.key
                params_rows[row] = params
            if image is not None:
                flat = [view for *_, images in kept for view in images]
                embedded = teacher.encode_images(flat).float().cpu()
                image[rows] = embedded.reshape(len(kept), views, dim).to(torch.float16)
            if text is not None:
                text[rows] = _encode_captions(teacher, [sample for _, sample, _, _ in kept]).to(torch.float16)
            counted["samples"] += len(kept)
            counted["views"] += len(kept) * views
        advance(len(items))
    _check_keys(keys, present, out, shard)
    tensors: dict[str, torch.Tensor] = {"present": present}
    if image is not None:
        tensors["image"] = image
    if text is not None:
        tensors["text"] = text
    if settings.enabled:
        tensors.update(params_to_tensors(params_rows, views))
    metadata = {
        "format": layout.SHARD_FORMAT,
        "plan": digest,
        "shard": str(shard),
        "start": str(indices.start),
        "stop": str(indices.stop),
        "keys": json.dumps(keys, ensure_ascii=False),
        "skips": json.dumps(skips, ensure_ascii=False),
    }
    path = layout.shard_path(out, shard)
    save_tensors_atomically(path, tensors, metadata=metadata)
    return counted


def _encode_captions(teacher, samples) -> torch.Tensor:
    """[N, D] float32 caption embeddings on the CPU, one teacher call per language, rows in sample order."""
    by_lang: dict[str, list[int]] = {}
    for row, sample in enumerate(samples):
        by_lang.setdefault(sample.lang, []).append(row)
    out = torch.empty(len(samples), int(teacher.embed_dim))
    for lang, rows in by_lang.items():
        out[torch.tensor(rows)] = teacher.encode_texts([samples[r].caption for r in rows], lang).float().cpu()
    return out


def _check_keys(keys: list[str], present: torch.Tensor, out: Path, shard: int) -> None:
    seen: set[str] = set()
    for key, here in zip(keys, present.tolist()):
        if not here:
            continue
        if not key:
            raise CompressError(f"{out}: shard {shard} has a sample without a key; the cache looks samples up by Sample.key")
        if key in seen:
            raise CompressError(f"{out}: sample key {key!r} occurs twice; the cache needs unique Sample.key values")
        seen.add(key)


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} samples/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


# ---------------------------------------------------------------------- the index


def finalize_cache(out: str | Path) -> dict[str, Any]:
    """Write `cache.json` once every shard of the plan in `out` is present; returns the index.

    Checks each shard (format, plan, range) and that no sample key repeats across shards.
    """
    out = Path(out).expanduser()
    plan = layout.read_json(out / layout.PLAN_FILE, "the build plan; is this a teacher cache folder?")
    digest = layout.plan_digest(plan)
    ranges = layout.shard_ranges(plan["dataset"]["size"], plan["shard_size"])
    missing = [s for s in range(len(ranges)) if not layout.shard_path(out, s).is_file()]
    if missing:
        shown = ", ".join(str(s) for s in missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise CompressError(
            f"{out}: {len(missing)} of {len(ranges)} shards are missing ({shown}); "
            "run the build (on every rank) until they are all written"
        )
    shards, seen, skipped_indices, reasons = [], set(), [], Counter()
    for shard, (start, stop) in enumerate(ranges):
        path = layout.shard_path(out, shard)
        meta = _shard_metadata(path)
        if meta.get("plan") != digest or (int(meta["start"]), int(meta["stop"])) != (start, stop):
            raise CompressError(f"{path}: does not belong to the plan in {out / layout.PLAN_FILE}; delete it and rerun")
        keys = json.loads(meta["keys"])
        for offset, key in enumerate(keys):
            if not key:
                skipped_indices.append(start + offset)
            elif key in seen:
                raise CompressError(f"{path}: sample key {key!r} also occurs in an earlier shard")
            else:
                seen.add(key)
        reasons.update(reason for _, _, reason in json.loads(meta.get("skips", "[]")))
        shards.append(
            {
                "file": f"{layout.SHARD_DIR}/{path.name}",
                "start": start,
                "stop": stop,
                "samples": sum(1 for key in keys if key),
                "sha256": file_sha256(path),
            }
        )
    index = {
        **plan,
        "plan_digest": digest,
        "samples": len(seen),
        "skipped": {"count": len(skipped_indices), "by_reason": dict(reasons), "indices": skipped_indices},
        "shards": shards,
    }
    write_json_atomically(out / layout.INDEX_FILE, index)
    return index
