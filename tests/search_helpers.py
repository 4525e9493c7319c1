"""Members of the default search spaces, each lowered to ExecuTorch once per test session.

Lowering a MobileViT takes tens of seconds on a small machine, so the family tests and the search
tests share one latency cache and one folder of `.pte` files under the session's temporary folder:
whichever test needs a member first lowers it, the others read the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.search import Candidate, LatencyCache, TowerMeasurement, default_space_path, load_space, measure_candidate, pte_path

WARMUP, REPEATS = 1, 3


def default_members() -> list[Candidate]:
    return [c for family in ("image", "text") for c in load_space(default_space_path(family)).candidates]


def shared_root(tmp_path_factory) -> Path:
    """The session's cache root (use it as COMPRESS_CACHE_DIR): search/latency/ and pte/ live in it."""
    root = tmp_path_factory.getbasetemp() / "search-cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class Lowered:
    candidate: Candidate
    measurement: TowerMeasurement
    pte: Path


_LOWERED: dict[tuple[str, str, str], Lowered] = {}


def lowered_member(root: Path, candidate: Candidate) -> Lowered:
    """The member measured into `root` (lowered on first use in this session, then from the cache)."""
    key = (str(root), candidate.family, candidate.name)
    if key not in _LOWERED:
        measurement, _ = measure_candidate(candidate, LatencyCache(root / "search" / "latency"), root / "pte", WARMUP, REPEATS)
        _LOWERED[key] = Lowered(candidate, measurement, pte_path(root / "pte", candidate))
    return _LOWERED[key]
