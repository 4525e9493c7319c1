"""The two training objectives, their adapters and their loss modules, in one `nn.Module`.

Stage 1 ("distill"): each student tower's output goes through an adapter (a linear map to the
teacher's width when the widths differ, identity otherwise) and the feature loss regresses the
teacher's embedding; a tower the teacher lacks contributes nothing.

Stage 2 ("align"): symmetric InfoNCE on the student's own normalised image and text embeddings,
optionally plus the stage-1 feature term and TinyCLIP affinity mimicking against the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compress import registry
from compress.distill.config import DistillConfig
from compress.errors import CompressError

TOWERS = ("image", "text")


@dataclass(frozen=True)
class Needs:
    """What one stage needs computed for a batch."""

    image: bool  # run the student's image tower
    text: bool  # run the student's text tower
    targets: bool  # ask the teacher (or its cache) for embeddings


def teacher_widths(teacher) -> dict[str, int | None]:
    """The teacher's embedding width per tower, None where the tower is absent."""
    return {tower: int(teacher.embed_dim) if getattr(teacher, f"has_{tower}_tower") else None for tower in TOWERS}


def student_towers(student) -> dict[str, bool]:
    """Which towers the student has (a student may be built with one tower only)."""
    return {tower: bool(getattr(student, f"has_{tower}_tower", True)) for tower in TOWERS}


def _loss(name: str, options: dict, weight: float | None = None) -> nn.Module:
    options = dict(options)
    if weight is not None:
        options["weight"] = weight
    try:
        return registry.get("losses", name)(**options)
    except TypeError as exc:
        raise CompressError(f"loss {name!r}: bad options {options!r} ({exc})") from None


class Objectives(nn.Module):
    """Adapters and losses of both stages; `compute(stage, ...)` returns (loss, {term: value})."""

    def __init__(self, config: DistillConfig, student_width: int, widths: dict[str, int | None],
                 student_towers: dict[str, bool]):
        super().__init__()
        self.widths = widths
        self.student_towers = student_towers
        shared = [tower for tower in TOWERS if widths[tower] is not None and student_towers[tower]]
        if not shared:
            raise CompressError(
                f"nothing to distil: the teacher has towers {[t for t in TOWERS if widths[t] is not None]} "
                f"and the student {[t for t in TOWERS if student_towers[t]]}"
            )
        self.adapters = nn.ModuleDict({
            tower: nn.Linear(student_width, widths[tower]) if widths[tower] != student_width else nn.Identity()
            for tower in shared
        })
        options = config.loss_options
        terms = config.stage2_losses
        self.losses = nn.ModuleDict({"stage1_feature": _loss(config.stage1_loss, options.get(config.stage1_loss, {}))})
        if "feature" in terms:
            self.losses["stage2_feature"] = _loss(config.stage1_loss, options.get(config.stage1_loss, {}),
                                                  terms["feature"])
        if "infonce" in terms:
            self.losses["infonce"] = _loss("infonce", options.get("infonce", {}), terms["infonce"])
        if "affinity" in terms:
            if widths["image"] is None or widths["text"] is None:
                raise CompressError("stage-2 term 'affinity' needs a teacher with both an image and a text tower")
            self.losses["affinity"] = _loss("affinity", options.get("affinity", {}), terms["affinity"])

    def needs(self, stage: str) -> Needs:
        if stage == "distill":
            return Needs(image="image" in self.adapters, text="text" in self.adapters, targets=True)
        if not all(self.student_towers.values()):
            raise CompressError("stage 2 (align) needs a student with both an image and a text tower")
        uses_teacher = "stage2_feature" in self.losses or "affinity" in self.losses
        return Needs(image=True, text=True, targets=uses_teacher)

    def teacher_towers(self) -> dict[str, bool]:
        """Which teacher embeddings any stage uses (the others need not be computed)."""
        affinity = "affinity" in self.losses
        return {tower: tower in self.adapters or affinity for tower in TOWERS}

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """The objective's modules trained in `stage` (adapters only where a feature term uses them)."""
        if stage == "distill":
            return [self.adapters]
        modules = [self.losses[k] for k in ("infonce", "affinity") if k in self.losses]
        if "stage2_feature" in self.losses:
            modules.append(self.adapters)
        return modules

    def logit_scale(self) -> float | None:
        """The student's learned inverse temperature (from InfoNCE, else affinity), for bundles and reports."""
        for key in ("infonce", "affinity"):
            if key in self.losses:
                return float(self.losses[key].scale().detach())
        return None

    def _feature_terms(self, loss: nn.Module, prefix: str, student: dict, targets: dict) -> dict[str, torch.Tensor]:
        terms = {}
        for tower in TOWERS:
            if tower in self.adapters and student.get(tower) is not None and targets.get(tower) is not None:
                if targets[tower].shape[-1] != self.widths[tower]:
                    raise CompressError(f"{tower} targets are {targets[tower].shape[-1]} wide, but the teacher's "
                                        f"embed_dim is {self.widths[tower]}")
                terms[f"{prefix}{tower}"] = loss(self.adapters[tower](student[tower]), targets[tower])
        return terms

    def compute(self, stage: str, student: dict[str, torch.Tensor | None],
                targets: dict[str, torch.Tensor | None] | None) -> tuple[torch.Tensor, dict[str, float]]:
        """`student`: raw tower outputs {"image", "text"}; `targets`: teacher embeddings or None."""
        if stage == "distill":
            terms = self._feature_terms(self.losses["stage1_feature"], "", student, targets or {})
            if not terms:
                raise CompressError("stage 1: the targets hold no embedding for any tower the student was run on")
        elif stage == "align":
            terms = {}
            if "infonce" in self.losses:
                terms["infonce"] = self.losses["infonce"](student["image"], student["text"])
            if "stage2_feature" in self.losses:
                terms.update(self._feature_terms(self.losses["stage2_feature"], "feature_", student, targets or {}))
            if "affinity" in self.losses:
                if targets is None or targets.get("image") is None or targets.get("text") is None:
                    raise CompressError("stage 2 affinity: the targets lack image or text embeddings")
                shared = self.losses["infonce"].scale() if "infonce" in self.losses else None
                terms["affinity"] = self.losses["affinity"](student["image"], student["text"],
                                                            targets["image"], targets["text"], logit_scale=shared)
        else:
            raise CompressError(f"unknown stage {stage!r}; stages: distill, align")
        total = torch.stack(list(terms.values())).sum()
        return total, {name: float(value.detach()) for name, value in terms.items()}
