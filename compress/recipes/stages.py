"""A recipe's stages and their records in the run folder (`stages.json`), for `--resume` and `--stages`.

Each stage is recorded as "running" when it starts and "finished" (with its seconds and outputs)
when it ends, so a run killed at any moment shows which stage it was in; `--resume` skips the
finished ones. A run folder is tied to the config it was started with: reusing it with a changed
config is refused, naming the keys that differ.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from compress.errors import CompressError
from compress.files import write_json_atomically

STAGES_FILE = "stages.json"
FINISHED, RUNNING = "finished", "running"
# Settings that locate the run folder rather than shape its results.
LOCATION_KEYS = ("runs_dir",)


def select_stages(spec: str | Sequence[str] | None, valid: Sequence[str]) -> tuple[str, ...]:
    """The stages a `--stages` value names ("distill,align,eval"), in the recipe's order; None: all of them."""
    if spec is None:
        return tuple(valid)
    names = [part.strip() for part in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise CompressError(f"--stages: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(valid)}")
    if not names:
        raise CompressError(f"--stages: no stage named; stages: {', '.join(valid)}")
    return tuple(name for name in valid if name in names)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """{"distill.lr.align": 0.0005, ...}: every leaf of a nested mapping under its dotted key."""
    if isinstance(config, Mapping) and config:
        out: dict[str, Any] = {}
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: _plain(config)}


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def config_differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """ "key: old -> new" for every dotted key whose value differs (a key present on one side only included)."""
    old, new = flatten(dict(saved)), flatten(json.loads(json.dumps(dict(now), default=str)))
    keys = sorted(k for k in set(old) | set(new) if k.split(".")[0] not in LOCATION_KEYS)
    missing = "(absent)"
    return [
        f"{k}: {old.get(k, missing)!r} -> {new.get(k, missing)!r}" for k in keys if old.get(k, missing) != new.get(k, missing)
    ]


class StageLog:
    """The stage records of one run folder, written atomically after every change (by the process that
    `writes`: rank 0 of a torchrun job; the other ranks keep theirs in memory)."""

    def __init__(self, run_dir: str | Path, writes: bool = True):
        self.path = Path(run_dir) / STAGES_FILE
        self.writes = writes
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                self.records = json.loads(self.path.read_text(encoding="utf-8"))["stages"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CompressError(f"{self.path}: unreadable stage records ({exc})") from None

    def status(self, stage: str) -> str | None:
        return self.records.get(stage, {}).get("status")

    def finished(self, stage: str) -> bool:
        return self.status(stage) == FINISHED

    def outputs(self, stage: str) -> dict[str, Any]:
        return dict(self.records.get(stage, {}).get("outputs") or {})

    def reset(self) -> None:
        self.records = {}
        self._write()

    def run(self, stage: str, work: Callable[[], Mapping[str, Any] | None]) -> dict[str, Any]:
        """Run `work` as `stage`: recorded as running, then finished with its outputs and seconds."""
        runs = int(self.records.get(stage, {}).get("runs", 0)) + 1
        self.records[stage] = {"status": RUNNING, "runs": runs, "started": time.time()}
        self._write()
        started = time.perf_counter()
        outputs = dict(work() or {})
        self.records[stage] = {
            "status": FINISHED,
            "runs": runs,
            "started": self.records[stage]["started"],
            "seconds": time.perf_counter() - started,
            "outputs": outputs,
        }
        self._write()
        return outputs

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.records))

    def _write(self) -> None:
        if not self.writes:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.path, {"stages": self.records})
