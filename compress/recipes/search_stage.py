"""The recipe's search stage: `compress search` under the config's phone budgets, choosing the student.

The `search:` section holds the budgets, the two search spaces (inline mappings in the search-space
layout of `compress.search.space`, or paths of space files), an optional per-operator latency table
measured on the phone, and the proxy settings. An inline space that gives no `embed_dim` embeds into
the teacher's space, and a text space that gives no `vocab_size` takes the recipe tokenizer's, so the
towers the search measures are the towers the recipe trains.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from rich.console import Console

from compress.errors import CompressError
from compress.recipes.schema import check_keys

SEARCH_DIR = "search"  # in the run folder: search.json, search.png, chosen_student.yaml, pte/, proxy/
BUDGET_KEYS = ("image_latency_ms", "text_latency_ms", "size_mb")
LUT_UNKNOWN = ("error", "zero")


def read_search_section(section: dict[str, Any], where: str) -> dict[str, Any]:
    """The `search:` section with its budgets, proxy settings, spaces and choices checked (nothing is measured)."""
    from compress.search.pareto import PICK_RULES, RANK_BY
    from compress.search.settings import ProxySettings

    section = dict(section)
    section["budgets"] = check_keys(section["budgets"] or {}, BUDGET_KEYS, f"{where}: budgets")
    section["proxy"] = check_keys(section["proxy"] or {}, list(ProxySettings.__dataclass_fields__), f"{where}: proxy")
    ProxySettings(**section["proxy"])  # its own range checks
    for family in ("image", "text"):
        space = section[f"{family}_space"]
        if not isinstance(space, (str, dict)) or not space:
            raise CompressError(
                f"{where}: {family}_space is a search space (a mapping) or the path of a space file, not {space!r}"
            )
    for key, valid in (("rank_by", RANK_BY), ("pick", PICK_RULES), ("lut_unknown", LUT_UNKNOWN)):
        if section[key] not in valid:
            raise CompressError(f"{where}: {key} must be one of {', '.join(valid)}, not {section[key]!r}")
    for key, low in (("warmup", 0), ("repeats", 1)):
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise CompressError(f"{where}: {key} must be an integer >= {low}, not {value!r}")
    if section["latency_lut"] is not None and not Path(section["latency_lut"]).expanduser().is_file():
        raise CompressError(f"{where}: latency_lut {section['latency_lut']}: no such file")
    return section


def search_space(spec: str | dict[str, Any], family: str, embed_dim: int, vocab_size: int, where: str):
    """One family's `SearchSpace` from an inline mapping (with the recipe's defaults) or a space file."""
    from compress.search import load_space, parse_space

    if isinstance(spec, str):
        space = load_space(spec, family=family)
    else:
        raw = copy.deepcopy(spec)
        raw.setdefault("family", family)
        raw.setdefault("embed_dim", embed_dim)
        if family == "text" and not _mentions(raw, "vocab_size"):
            raw["fixed"] = {**(raw.get("fixed") or {}), "vocab_size": vocab_size}
        space = parse_space(raw, source=f"{where}: {family}_space", family=family)
    if family == "text":
        for candidate in space.candidates:
            if candidate.resolved["vocab_size"] != vocab_size:
                raise CompressError(
                    f"{space.source}: text candidate {candidate.name} has vocab_size {candidate.resolved['vocab_size']} "
                    f"but tokenizer.vocab_size is {vocab_size}; they must agree, since the search measures each "
                    "tower with the vocabulary the recipe's tokenizer is trained to"
                )
    return space


def _mentions(raw: dict[str, Any], option: str) -> bool:
    entries = [raw.get("fixed") or {}, raw.get("grid") or {}, *(raw.get("candidates") or [])]
    return any(isinstance(entry, dict) and option in entry for entry in entries)


def run_search_stage(
    section: dict[str, Any], teacher, vocab_size: int, device: str, run_dir: Path, console: Console, where: str
) -> dict[str, Any]:
    """Search under the section's budgets into `run_dir/search`; the outputs the stage records."""
    from compress.search import Budgets, LatencyCache, LatencyTable, ProxyCache, ProxySettings, run_search

    embed_dim = int(teacher.embed_dim)
    image_space = search_space(section["image_space"], "image", embed_dim, vocab_size, where)
    text_space = search_space(section["text_space"], "text", embed_dim, vocab_size, where)
    # The proxy runs train where the recipe trains, unless the section says otherwise.
    proxy = ProxySettings(**{"device": device, **section["proxy"]})
    lut = LatencyTable.load(section["latency_lut"]) if section["latency_lut"] else None
    result = run_search(
        Budgets(**section["budgets"]),
        image_space,
        text_space,
        teacher,
        run_dir / SEARCH_DIR,
        proxy=proxy,
        lut=lut,
        lut_unknown=section["lut_unknown"],
        rank_by=section["rank_by"],
        pick_rule=section["pick"],
        warmup=section["warmup"],
        repeats=section["repeats"],
        latency_cache=LatencyCache(),
        proxy_cache=ProxyCache(),
        console=console,
    )
    chosen = result.chosen
    return {
        "student": str(result.paths["student"]),
        "report": str(result.paths["json"]),
        "image": chosen.image.name,
        "text": chosen.text.name,
        "image_latency_ms": round(chosen.image.latency_ms, 4),
        "text_latency_ms": round(chosen.text.latency_ms, 4),
        "latency_source": chosen.image.latency_source,
        "size_mb": round(chosen.size_mb, 4),
        "candidates": {"image": len(result.image), "text": len(result.text)},
        "front": len(result.front),
    }


def chosen_student(run_dir: Path) -> dict[str, Any]:
    """The student config the run's search stage chose."""
    from compress.search import read_student_config
    from compress.search.search import STUDENT_FILE

    path = run_dir / SEARCH_DIR / STUDENT_FILE
    if not path.is_file():
        raise CompressError(f"{run_dir}: no searched student yet ({path}); run the search stage first (--stages search,...)")
    return read_student_config(path)
