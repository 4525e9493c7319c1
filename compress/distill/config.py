"""The Distiller's settings as one plain, JSON-ready dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compress.device import PRECISIONS
from compress.distill.terms import stage1_term, stage2_terms
from compress.errors import CompressError

STAGES = ("distill", "align")
STAGE_PLANS = {"distill": ("distill",), "align": ("align",), "both": ("distill", "align")}
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "constant")


def per_stage(value: Any, stage: str) -> Any:
    """A setting that is either one value for both stages or a mapping {"distill": ..., "align": ...}."""
    if isinstance(value, Mapping):
        if stage not in value:
            raise CompressError(f"per-stage setting {dict(value)!r} has no value for stage {stage!r}")
        return value[stage]
    return value


def normalise_stage2_losses(spec: Any) -> dict[str, float]:
    """("infonce", "affinity"), [("infonce", 1.0), ("feature", 0.5)] or {"infonce": 1.0} -> {name: weight}.

    The names are checked against the loss registry by `compress.distill.terms.stage2_terms`."""
    if isinstance(spec, str):
        spec = (spec,)
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Sequence):
        items = []
        for entry in spec:
            if isinstance(entry, str):
                items.append((entry, 1.0))
            elif isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[0], str):
                items.append((entry[0], entry[1]))
            else:
                raise CompressError(f"stage2_losses: an entry is a name or a (name, weight) pair, not {entry!r}")
    else:
        raise CompressError(f"stage2_losses: expected names, (name, weight) pairs or a dict, not {spec!r}")
    weights: dict[str, float] = {}
    for name, weight in items:
        if not isinstance(name, str):
            raise CompressError(f"stage2_losses: a term is named by a string, not {name!r}")
        if name in weights:
            raise CompressError(f"stage2_losses: term {name!r} given twice")
        try:
            weights[name] = float(weight)
        except (TypeError, ValueError):
            raise CompressError(f"stage2_losses: weight of {name!r} is not a number: {weight!r}") from None
    if not weights:
        raise CompressError("stage2_losses: at least one term is needed")
    return weights


@dataclass
class DistillConfig:
    """Every training setting of a `Distiller`; `lr`, `batch_size`, `epochs` and `steps` may be per-stage mappings."""

    stage1_loss: str = "smooth_l1"
    stage2_losses: Any = ("infonce",)
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    optimizer: str = "adamw"
    lr: Any = 1e-3
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup_steps: int = 0
    batch_size: Any = 32
    epochs: Any = 1
    steps: Any = None
    grad_clip: float | None = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    # Steps between reads of the losses off the device (each read waits for the device; the loss log
    # still gets every step's loss). Epoch ends, stage ends and checkpoints read them too.
    log_every: int = 10
    keep_checkpoints: int = 2
    device: str = "auto"
    precision: str = "auto"
    num_workers: int = 0
    # The student's image tower gets its pixels in channels-last layout: on a CPU, a MobileViT
    # training step at 128 px then takes 0.73x the time (batch 32; 0.85x at batch 64), with outputs
    # equal to 1e-4. Off for a third-party tower that reshapes its input with `view`.
    channels_last: bool = True
    # Stage 2 trains the student under int8 fake quantization (compress.quant.prepare_qat) and
    # converts it at the end, so the int8 models exported from it lose less than post-training int8.
    qat: bool = False

    def __post_init__(self):
        self.device = str(self.device)
        if not isinstance(self.loss_options, Mapping) or not all(isinstance(v, Mapping) for v in self.loss_options.values()):
            raise CompressError(f"loss_options maps a loss name to its options, not {self.loss_options!r}")
        self.loss_options = {str(name): dict(options) for name, options in self.loss_options.items()}
        stage1_term(self.stage1_loss)
        self.stage2_losses = normalise_stage2_losses(self.stage2_losses)
        stage2_terms(self.stage2_losses, self.stage1_loss)
        if self.optimizer not in OPTIMIZERS:
            raise CompressError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise CompressError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise CompressError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        for setting in ("lr", "batch_size", "epochs", "steps"):
            value = getattr(self, setting)
            if isinstance(value, Mapping):
                unknown = set(value) - set(STAGES)
                if unknown:
                    raise CompressError(f"{setting}: unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
        for stage in STAGES:
            self._check_stage(stage)
        for name, value, low in (
            ("checkpoint_every", self.checkpoint_every, 1),
            ("log_every", self.log_every, 1),
            ("keep_checkpoints", self.keep_checkpoints, 1),
            ("warmup_steps", self.warmup_steps, 0),
            ("num_workers", self.num_workers, 0),
        ):
            if not isinstance(value, int) or value < low:
                raise CompressError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("qat", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise CompressError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise CompressError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.weight_decay < 0:
            raise CompressError(f"weight_decay must be >= 0, got {self.weight_decay!r}")

    def _check_stage(self, stage: str) -> None:
        """Check the per-stage values given for `stage` (a stage missing from a mapping is checked when it runs)."""
        present = lambda value: not isinstance(value, Mapping) or stage in value  # noqa: E731
        if present(self.lr):
            lr = per_stage(self.lr, stage)
            if not isinstance(lr, (int, float)) or not lr > 0:
                raise CompressError(f"lr for stage {stage!r} must be a number > 0, got {lr!r}")
        if present(self.batch_size):
            batch_size = per_stage(self.batch_size, stage)
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise CompressError(f"batch_size for stage {stage!r} must be an integer >= 1, got {batch_size!r}")
        steps = per_stage(self.steps, stage) if present(self.steps) else None
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise CompressError(f"steps for stage {stage!r} must be a positive integer, got {steps!r}")
        if steps is None and present(self.epochs):
            epochs = per_stage(self.epochs, stage)
            if not isinstance(epochs, int) or epochs < 1:
                raise CompressError(f"epochs for stage {stage!r} must be a positive integer, got {epochs!r}")

    def lr_for(self, stage: str) -> float:
        return float(per_stage(self.lr, stage))

    def batch_size_for(self, stage: str) -> int:
        return int(per_stage(self.batch_size, stage))

    def steps_for(self, stage: str) -> int | None:
        """The optimizer-step budget of `stage`, or None when its length is given in epochs."""
        if isinstance(self.steps, Mapping) and stage not in self.steps:
            return None
        return per_stage(self.steps, stage)

    def epochs_for(self, stage: str) -> int:
        return int(per_stage(self.epochs, stage))

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "DistillConfig") -> DistillConfig:
        """This config with some settings replaced (validated again); an unknown setting is an error naming it."""
        unknown = sorted(set(overrides) - set(self.keys()))
        if unknown:
            raise CompressError(f"{where}: unknown setting(s) {', '.join(unknown)}; settings: {', '.join(self.keys())}")
        return dataclasses.replace(self, **overrides) if overrides else self

    def changes_from(self, saved: Mapping[str, Any]) -> list[str]:
        """ "name: old -> new" for each setting that differs from a saved config (a checkpoint's)."""
        now = self.to_dict()
        return [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in now if k in saved and _jsonish(saved[k]) != _jsonish(now[k])]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _jsonish(value):
    if isinstance(value, (tuple, list)):
        return [_jsonish(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonish(v) for k, v in value.items()}
    return value
