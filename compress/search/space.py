"""Search spaces: readable YAML files that list candidate student towers of one family.

    family: image            # or text
    embed_dim: 256           # the shared embedding size (image and text spaces must agree)
    fixed:                   # options every candidate shares
      drop_path_rate: 0.0
    grid:                    # every combination of these values is a candidate
      model: [mobilevitv2_050, mobilevitv2_075]
      image_size: [64, 128]
    candidates:              # extra candidates, each on top of `fixed`
      - {model: mobilevit_xxs, image_size: 64}

Options are the student family's tower options (`students.bilingual.DEFAULT_CONFIG["image"]` or
`["text"]`); for text, `vocab_size` is the tokenizer's vocabulary size (default
`tokenizer_vocab_size`, 8000). Candidates that resolve to the same options are listed once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compress.errors import CompressError

FAMILIES = ("image", "text")
SPACE_KEYS = ("family", "embed_dim", "description", "fixed", "grid", "candidates")
# libyaml's safe loader where PyYAML was built with it: fast, and it refuses absurd nesting at once
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_CANDIDATES = 10_000  # a grid expanding past this is refused before it is expanded
SPACES_DIR = Path(__file__).resolve().parents[2] / "students" / "spaces"
# The options that change the exported program (and so its latency and size); the others
# (initial weights, dropout, preprocessing) change training only.
ARCHITECTURE_KEYS = {
    "image": ("model", "image_size", "width", "stage_strides", "act"),
    "text": ("layers", "hidden", "heads", "ffn", "max_length", "pooling", "norm", "vocab_size"),
}


STUDENT_FAMILY = "bilingual"  # the registered student family whose towers the spaces describe


def family_towers(name: str = STUDENT_FAMILY):
    """The registered student family's tower support (`towers`: defaults, default_embed_dim, check, build)."""
    from compress import registry

    towers = getattr(registry.get("students", name), "towers", None)
    if towers is None:
        raise CompressError(f"student family {name!r} offers no tower search (its entry point has no 'towers')")
    return towers


def family_defaults(family: str) -> dict[str, Any]:
    """The student family's default tower options; text `vocab_size` defaults to the tokenizer's size."""
    return family_towers().defaults(family)


def default_space_path(family: str) -> Path:
    """The shipped default space of `family` (students/spaces/<family>.yaml)."""
    if family not in FAMILIES:
        raise CompressError(f"unknown student family {family!r}; families: {', '.join(FAMILIES)}")
    return SPACES_DIR / f"{family}.yaml"


@dataclass(frozen=True)
class Candidate:
    """One tower to measure: its family, its options (over the family defaults) and the embedding size."""

    family: str
    name: str
    options: dict[str, Any] = field(hash=False)
    embed_dim: int = 256

    @property
    def resolved(self) -> dict[str, Any]:
        """Every tower option: the family defaults overlaid with this candidate's options."""
        return {**family_defaults(self.family), **self.options}

    @property
    def architecture(self) -> dict[str, Any]:
        """The options that decide the exported program, plus the embedding size."""
        resolved = self.resolved
        return {"embed_dim": self.embed_dim, **{key: resolved[key] for key in ARCHITECTURE_KEYS[self.family]}}

    def digest(self) -> str:
        """sha256 of the family and every resolved option: equal digests train and export alike."""
        keyed = {"family": self.family, "embed_dim": self.embed_dim, "options": self.resolved}
        return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "name": self.name, "embed_dim": self.embed_dim, "options": dict(self.options)}


@dataclass
class SearchSpace:
    """The candidates of one family, read from `source`."""

    family: str
    embed_dim: int
    candidates: list[Candidate]
    source: str
    description: str = ""

    def __len__(self) -> int:
        return len(self.candidates)

    def subset(self, names: list[str]) -> SearchSpace:
        """The same space restricted to the named candidates (unknown names are refused)."""
        known = {c.name: c for c in self.candidates}
        missing = [n for n in names if n not in known]
        if missing:
            raise CompressError(f"{self.source}: no candidate named {', '.join(missing)}; candidates: {', '.join(known)}")
        return SearchSpace(self.family, self.embed_dim, [known[n] for n in names], self.source, self.description)


def candidate_name(family: str, resolved: dict[str, Any]) -> str:
    """A short readable name: "mobilevitv2_050@64", "mobilevitv2_050-w0.75-s22221-relu@224" (a changed layout),
    "L4-H256-A4-F512-T32-V8000"."""
    if family == "image":
        name = resolved["model"]
        if resolved.get("width", 1) != 1:
            name += f"-w{resolved['width']:g}"
        if resolved.get("stage_strides"):
            name += "-s" + "".join(str(s) for s in resolved["stage_strides"])
        if resolved.get("act"):
            name += f"-{resolved['act']}"
        return f"{name}@{resolved['image_size']}"
    name = (
        f"L{resolved['layers']}-H{resolved['hidden']}-A{resolved['heads']}-F{resolved['ffn']}"
        f"-T{resolved['max_length']}-V{resolved['vocab_size']}"
    )
    if resolved.get("pooling") != "mean":
        name += f"-{resolved['pooling']}"
    if resolved.get("norm") != "pre":
        name += f"-{resolved['norm']}norm"
    return name


def load_space(path: str | Path, family: str | None = None) -> SearchSpace:
    """Read and check a space file; `family`, when given, must match the file's `family`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CompressError(f"{path}: no such search space file")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CompressError(f"{path}: not valid YAML ({_first_line(exc)})") from None
    except RecursionError:
        raise CompressError(f"{path}: not valid YAML (nested too deeply)") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value PyYAML cannot build, e.g. the date 2001-13-45
        raise CompressError(f"{path}: not valid YAML ({type(exc).__name__}: {_first_line(exc)})") from None
    except OSError as exc:
        raise CompressError(f"{path}: cannot read the search space ({exc.strerror or exc})") from None
    return parse_space(raw, source=str(path), family=family)


def parse_space(raw: Any, source: str = "<space>", family: str | None = None) -> SearchSpace:
    """A `SearchSpace` from the parsed YAML mapping (see the module docstring for the layout)."""
    if not isinstance(raw, dict):
        raise CompressError(f"{source}: a search space is a mapping with family, fixed, grid and candidates")
    unknown = [key for key in raw if key not in SPACE_KEYS]
    if unknown:
        raise CompressError(f"{source}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(SPACE_KEYS)}")
    declared = raw.get("family")
    if declared not in FAMILIES:
        raise CompressError(f"{source}: family must be one of {', '.join(FAMILIES)}, not {declared!r}")
    if family is not None and declared != family:
        raise CompressError(f"{source}: holds {declared} candidates, but {family} candidates are needed here")
    embed_dim = raw.get("embed_dim", _default_embed_dim())
    if isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 1:
        raise CompressError(f"{source}: embed_dim must be a positive integer, not {embed_dim!r}")

    known_options = family_defaults(declared)
    fixed = _options(raw.get("fixed") or {}, known_options, f"{source}: fixed")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        raise CompressError(f"{source}: grid is a mapping of option -> list of values")
    _options(grid, known_options, f"{source}: grid")
    for option, values in grid.items():
        if not isinstance(values, list) or not values:
            raise CompressError(f"{source}: grid option {option!r} needs a non-empty list of values, not {values!r}")
    extra = raw.get("candidates") or []
    if not isinstance(extra, list):
        raise CompressError(f"{source}: candidates is a list of option mappings")

    combinations = math.prod(len(values) for values in grid.values()) if grid else 0
    if combinations + len(extra) > MAX_CANDIDATES:
        raise CompressError(
            f"{source}: the space lists {combinations + len(extra)} candidates; at most {MAX_CANDIDATES} "
            "can be measured (narrow the grid)"
        )
    option_sets = []
    if grid:
        keys = list(grid)
        option_sets += [{**fixed, **dict(zip(keys, combo))} for combo in itertools.product(*(grid[k] for k in keys))]
    for index, entry in enumerate(extra):
        option_sets.append({**fixed, **_options(entry, known_options, f"{source}: candidates[{index}]")})
    if not option_sets:
        raise CompressError(f"{source}: the space has no candidates (give a grid or a candidates list)")

    candidates: list[Candidate] = []
    seen: set[str] = set()
    for options in option_sets:
        resolved = {**known_options, **options}
        _check_candidate(declared, resolved, embed_dim, source)
        name = candidate_name(declared, resolved)
        candidate = Candidate(declared, name, options, embed_dim)
        digest = candidate.digest()
        if digest in seen:
            continue  # the same options listed twice
        namesakes = sum(1 for c in candidates if c.name.split("#")[0] == name)
        if namesakes:  # same architecture, other training options (checkpoint, dropout, ...)
            candidate = Candidate(declared, f"{name}#{namesakes + 1}", options, embed_dim)
        seen.add(digest)
        candidates.append(candidate)
    return SearchSpace(declared, embed_dim, candidates, source, str(raw.get("description") or ""))


def _default_embed_dim() -> int:
    return family_towers().default_embed_dim()


def _options(entry: Any, known: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise CompressError(f"{where}: expected a mapping of options, not {entry!r}")
    unknown = [key for key in entry if key not in known]
    if unknown:
        raise CompressError(f"{where}: unknown option(s) {', '.join(map(str, unknown))}; options: {', '.join(known)}")
    return dict(entry)


def _check_candidate(family: str, resolved: dict[str, Any], embed_dim: int, source: str) -> None:
    """Refuse a candidate that cannot be built, before anything slow runs."""
    label = f"{source}: candidate {json.dumps(resolved, default=str)}"
    try:
        family_towers().check(family, resolved, embed_dim)
    except CompressError as exc:
        raise CompressError(f"{label}: {exc}") from None
    except Exception as exc:  # the family's own code failing on values of the wrong kind or range
        raise CompressError(f"{label}: cannot be built ({type(exc).__name__}: {_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
