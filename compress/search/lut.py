"""Latency from a per-operator lookup table measured on a phone, instead of running the tower here.

The table is a JSON file:

    {
      "format": "compress-op-latency-table",
      "version": 1,
      "device": "Pixel 8",
      "runtime": "executorch-1.5.1-xnnpack",
      "unit": "ms",
      "ops": {
        "aten.conv2d.default(f32[1,3,64,64], f32[16,3,3,3], None, [2, 2], [1, 1], [1, 1], 1)": 0.041,
        "aten.linear.default(f32[1,32,256], f32[512,256], f32[512])": 0.012
      }
    }

Keys of `ops` are operator signatures (`compress.search.signatures`): the operator of one node of
the tower's `torch.export` graph with its argument shapes and settings. A tower's latency is the
sum over its graph's nodes of the table's value for each node's signature. `ops` is required;
`device` and `runtime` are recorded in the search report; `unit`, when present, must be "ms".
`compress search --write-lut-template FILE` writes every signature the searched towers use, with
null values to fill in and how often each occurs (`counts`); views and reshapes may be 0.

A signature missing from the table is an error naming it, unless `on_unknown="zero"`, which counts
it as 0 ms and reports how many were missing.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.errors import CompressError
from compress.files import write_json_atomically

LUT_FORMAT = "compress-op-latency-table"
LUT_VERSION = 1
UNKNOWN_POLICIES = ("error", "zero")


@dataclass
class LutLatency:
    """A tower's latency from the table, and the signatures the table lacked (policy "zero" only)."""

    latency_ms: float
    unknown: dict[str, int] = field(default_factory=dict)


@dataclass
class LatencyTable:
    ops: dict[str, float]
    device: str = ""
    runtime: str = ""
    source: str = "<table>"

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path).expanduser()
        if not path.is_file():
            raise CompressError(f"{path}: no such latency table")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CompressError(f"{path}: not valid JSON ({exc})") from None
        except RecursionError:
            raise CompressError(f"{path}: not valid JSON (nested too deeply)") from None
        except OSError as exc:
            raise CompressError(f"{path}: cannot read the latency table ({exc.strerror or exc})") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<table>") -> LatencyTable:
        if not isinstance(raw, dict) or not isinstance(raw.get("ops"), dict):
            raise CompressError(f'{source}: a latency table is a JSON object with an "ops" object of signature -> ms')
        if raw.get("format", LUT_FORMAT) != LUT_FORMAT or raw.get("version", LUT_VERSION) != LUT_VERSION:
            raise CompressError(
                f"{source}: format {raw.get('format')!r} version {raw.get('version')!r} is not "
                f"{LUT_FORMAT!r} version {LUT_VERSION}"
            )
        if raw.get("unit", "ms") != "ms":
            raise CompressError(f'{source}: unit must be "ms", not {raw.get("unit")!r}')
        unfilled = [sig for sig, value in raw["ops"].items() if value is None]
        if unfilled:
            raise CompressError(f"{source}: {len(unfilled)} operator(s) have no latency yet (null), e.g. {unfilled[0]}")
        bad = [(sig, value) for sig, value in raw["ops"].items() if not _is_latency(value)]
        if bad:
            raise CompressError(
                f"{source}: latency of {bad[0][0]} must be a number >= 0 (ms), not {bad[0][1]!r}"
                + (f" ({len(bad) - 1} more)" if len(bad) > 1 else "")
            )
        return cls(
            {sig: float(v) for sig, v in raw["ops"].items()}, str(raw.get("device", "")), str(raw.get("runtime", "")), source
        )

    def latency(self, ops: Mapping[str, int], what: str = "the tower", on_unknown: str = "error") -> LutLatency:
        """The sum of count x table value over `ops` (signature -> count)."""
        if on_unknown not in UNKNOWN_POLICIES:
            raise CompressError(f"unknown-operator policy must be one of {', '.join(UNKNOWN_POLICIES)}, not {on_unknown!r}")
        unknown = {sig: count for sig, count in ops.items() if sig not in self.ops}
        if unknown and on_unknown == "error":
            shown = "; ".join(sorted(unknown)[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise CompressError(
                f"{self.source}: {len(unknown)} operator signature(s) of {what} are not in the table: {shown}{more} "
                "(add them, e.g. from `compress search --write-lut-template FILE`, or count them as 0 ms with "
                "--lut-unknown zero)"
            )
        total = sum(count * self.ops[sig] for sig, count in ops.items() if sig in self.ops)
        return LutLatency(total, unknown)

    @property
    def label(self) -> str:
        return " / ".join(part for part in (self.device, self.runtime) if part) or self.source


def _is_latency(value: Any) -> bool:
    """A finite number of milliseconds >= 0 (an integer too large for a float is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and value >= 0
    except OverflowError:
        return False


def lut_template(ops_by_tower: Mapping[str, Mapping[str, int]], device: str = "", runtime: str = "") -> dict[str, Any]:
    """A table to fill in: every signature the towers use, value null, with total counts and users."""
    counts: Counter = Counter()
    users: dict[str, list[str]] = {}
    for tower, ops in ops_by_tower.items():
        for sig, count in ops.items():
            counts[sig] += count
            users.setdefault(sig, []).append(tower)
    signatures = sorted(counts)
    return {
        "format": LUT_FORMAT,
        "version": LUT_VERSION,
        "device": device,
        "runtime": runtime,
        "unit": "ms",
        "ops": {sig: None for sig in signatures},
        "counts": {sig: counts[sig] for sig in signatures},
        "used_by": {sig: users[sig] for sig in signatures},
    }


def write_lut_template(
    path: str | Path, ops_by_tower: Mapping[str, Mapping[str, int]], device: str = "", runtime: str = ""
) -> Path:
    return write_json_atomically(path, lut_template(ops_by_tower, device=device, runtime=runtime))
