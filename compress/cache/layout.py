"""The on-disk layout of a teacher cache.

    <out>/build.json                  the plan: teacher, dataset, augmentation, shard size (written first)
    <out>/shards/shard-00000.safetensors, ...
                                      per shard: fp16 "image" [n, views, D] and "text" [n, D],
                                      "present" [n] (0 for samples the data source skipped) and the
                                      view parameters; its metadata holds the sample keys
    <out>/cache.json                  the index (written last): the plan, every shard with its
                                      sha256, counts. Its presence marks the cache complete.

Every file is written to a temporary name beside its target and renamed into place, so a build
killed at any moment leaves only whole shards; a rerun keeps them and builds the rest.
Shard i is built by rank i % world_size.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from compress.errors import CompressError

CACHE_FORMAT = "compress-teacher-cache"
SHARD_FORMAT = "compress-teacher-cache-shard"
FORMAT_VERSION = 1
PLAN_FILE = "build.json"
INDEX_FILE = "cache.json"
SHARD_DIR = "shards"
STORE_DTYPE = "float16"


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.safetensors"


def shard_path(out: Path, shard: int) -> Path:
    return out / SHARD_DIR / shard_name(shard)


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, stop) of every shard over `size` samples."""
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def shards_of_rank(num_shards: int, rank: int, world_size: int) -> list[int]:
    """The shards rank `rank` builds: every world_size-th, from `rank`."""
    return list(range(rank, num_shards, world_size))


def plan_digest(plan: dict[str, Any]) -> str:
    """sha256 hex of the plan's canonical JSON: shards record it so foreign shards are recognised."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompressError(f"{path}: missing; {what}") from None
    except (OSError, ValueError) as exc:
        raise CompressError(f"{path}: cannot read {what} ({exc})") from None
    except RecursionError:
        raise CompressError(f"{path}: cannot read {what} (JSON nested too deeply)") from None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise CompressError(f"{path}: not a teacher cache file (format {found!r})")
    if data.get("version") != FORMAT_VERSION:
        raise CompressError(f"{path}: teacher cache version {data.get('version')!r}; this library reads {FORMAT_VERSION}")
    return data


def clear_stale_temporaries(out: Path, shards: list[int]) -> int:
    """Remove the temporary files a killed build left for `shards` (this rank's); returns how many.

    Other ranks' temporaries are left alone: they may be writing them right now.
    """
    removed = 0
    for shard in shards:
        for temp in (out / SHARD_DIR).glob(f".{shard_name(shard)}.*.tmp"):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


# The fields of an index a reader relies on, with their JSON types.
_INDEX_FIELDS = {
    "teacher": dict,
    "dataset": dict,
    "augmentation": dict,
    "plan_digest": str,
    "samples": int,
    "shards": list,
}
_TEACHER_FIELDS = {"name": str, "fingerprint": str, "embed_dim": int, "image": bool, "text": bool}
_DATASET_FIELDS = {"digest": str, "size": int}
_SHARD_FIELDS = {"file": str, "sha256": str}


def check_index(index: dict[str, Any], path: Path) -> dict[str, Any]:
    """`index` (read from `path`) if every field a reader uses is there with its type and every shard
    file lies inside the cache folder; else one `CompressError` naming `path` and the field."""
    _check_fields(index, _INDEX_FIELDS, path, "")
    _check_fields(index["teacher"], _TEACHER_FIELDS, path, "teacher.")
    _check_fields(index["dataset"], _DATASET_FIELDS, path, "dataset.")
    for key in ("samples",):
        if index[key] < 0:
            raise CompressError(f"{path}: {key} must be >= 0, not {index[key]!r}")
    if index["teacher"]["embed_dim"] < 1 or index["dataset"]["size"] < 0:
        raise CompressError(f"{path}: teacher.embed_dim must be >= 1 and dataset.size >= 0")
    for number, entry in enumerate(index["shards"]):
        if not isinstance(entry, dict):
            raise CompressError(f"{path}: shards[{number}] must be an object, not {type(entry).__name__}")
        _check_fields(entry, _SHARD_FIELDS, path, f"shards[{number}].")
        shard_file_inside(path.parent, entry["file"], path)
    return index


def shard_file_inside(folder: Path, file: str, index_path: Path) -> Path:
    """`folder / file`, refused when `file` is absolute or leaves `folder` (through .. or a symlink)."""
    if not file or os.path.isabs(file) or "\0" in file:
        raise CompressError(f"{index_path}: shard file {file!r} is outside the cache folder (not a relative path)")
    real_folder = os.path.realpath(folder)
    resolved = os.path.realpath(os.path.join(real_folder, file))
    if os.path.commonpath([real_folder, resolved]) != real_folder or resolved == real_folder:
        raise CompressError(f"{index_path}: shard file {file!r} is outside the cache folder {folder}")
    return folder / file


def _check_fields(data: dict[str, Any], fields: dict[str, type], path: Path, prefix: str) -> None:
    for name, kind in fields.items():
        value = data.get(name)
        wrong = (
            value is None
            or not isinstance(value, kind)
            or (kind is int and (isinstance(value, bool) or not -(2**63) <= value < 2**63))
        )
        if wrong:
            found = "missing" if name not in data else f"a JSON {type(value).__name__}"
            raise CompressError(f"{path}: {prefix}{name} must be a {_JSON_NAMES[kind]}, found {found}")


_JSON_NAMES = {dict: "JSON object", list: "JSON list", str: "string", int: "64-bit integer", bool: "true/false"}
