"""Export settings and their defaults, in one place: `export_bundle`, `compress export` and the
recipe all read them from here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from compress.errors import CompressError

QUANTIZE = ("none", "int8")
DEFAULT_TARGETS = ("executorch",)
DEFAULT_LABEL_SETS = ("demo-shape", "demo-color")
DEFAULT_CALIBRATION_DATA = "demo:train"
DEFAULT_CALIBRATION_COUNT = 64
DEFAULT_PARITY_DATA = "demo:test"
DEFAULT_PARITY_COUNT = 32
DEFAULT_ZERO_SHOT_COUNT = 200
DEFAULT_WORKERS = 1
DEFAULT_LOGIT_SCALE = 100.0  # CLIP's trained value, used when the run recorded none
THRESHOLDS = MappingProxyType(
    {
        "fp32_max_abs_error": 1e-4,  # an fp32 program against eager PyTorch
        "min_cosine_vs_fp32": 0.99,  # a reduced-precision program against the fp32 one
        "max_top1_drop_points": 1.0,  # zero-shot top-1, reduced precision against fp32
    }
)


def _names(values: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split(",")
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


@dataclass(frozen=True)
class ExportSettings:
    """What one bundle export writes and checks.

    `targets`: registered target names (`compress.targets` entry points); `precisions`: an
    explicit precision list per target name (otherwise each target's own for `quantize`);
    `int8_schemes`: an int8 scheme per tower ("static"/"dynamic"; otherwise the target's default);
    `parity_count` held-out samples for the embedding checks; `zero_shot_count` test images per label
    set; `logit_scale` (None: `DEFAULT_LOGIT_SCALE`); `strict` makes a failed check an error;
    `overwrite` replaces a non-empty output folder; `workers` is how many processes export the
    towers at once (`compress.bundle.workers`; 1: in this process).
    """

    targets: tuple[str, ...] = DEFAULT_TARGETS
    quantize: str = "none"
    label_sets: tuple[str, ...] = DEFAULT_LABEL_SETS
    precisions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    int8_schemes: Mapping[str, str] = field(default_factory=dict)
    parity_count: int = DEFAULT_PARITY_COUNT
    zero_shot_count: int = DEFAULT_ZERO_SHOT_COUNT
    logit_scale: float | None = None
    strict: bool = False
    overwrite: bool = False
    workers: int = DEFAULT_WORKERS
    thresholds: Mapping[str, float] = field(default_factory=lambda: THRESHOLDS)

    def __post_init__(self):
        object.__setattr__(self, "targets", _names(self.targets))
        object.__setattr__(self, "label_sets", _names(self.label_sets))
        object.__setattr__(
            self, "precisions", MappingProxyType({k: _names(v) for k, v in dict(self.precisions).items() if _names(v)})
        )
        object.__setattr__(self, "int8_schemes", MappingProxyType(dict(self.int8_schemes)))
        if not self.targets:
            raise CompressError("no export target given")
        if self.quantize not in QUANTIZE:
            raise CompressError(f"unknown quantization {self.quantize!r}; choose one of {', '.join(QUANTIZE)}")
        if self.parity_count < 1:
            raise CompressError(f"parity_count must be at least 1, got {self.parity_count}")
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise CompressError(f"workers must be a whole number of processes, at least 1, got {self.workers!r}")
        if self.zero_shot_count < 0:
            raise CompressError(f"zero_shot_count must be at least 0, got {self.zero_shot_count}")
        stray = sorted(set(self.precisions) - set(self.targets))
        if stray:
            raise CompressError(
                f"precisions given for target(s) {', '.join(stray)} that are not exported ({', '.join(self.targets)})"
            )

    @property
    def scale(self) -> float:
        return float(self.logit_scale if self.logit_scale is not None else DEFAULT_LOGIT_SCALE)

    def with_options(self, **options: Any) -> ExportSettings:
        """A copy with some fields changed; `coreml_variants=[...]` is `precisions={"coreml": [...]}`."""
        variants = options.pop("coreml_variants", None)
        if variants:
            options["precisions"] = {**dict(options.get("precisions", self.precisions)), "coreml": tuple(variants)}
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise CompressError(f"unknown export setting(s) {', '.join(unknown)}; settings: {', '.join(sorted(known))}")
        return replace(self, **{k: v for k, v in options.items() if v is not None})
