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

from compress.distill.config import DistillConfig
from compress.distill.terms import Term, loss_class, stage1_term, stage2_terms
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


def _build_loss(term: Term, options: dict) -> nn.Module:
    """The term's loss module, built through the registry as `cls(weight=..., **options)`."""
    options = dict(options)
    if term.weight is not None:
        options["weight"] = term.weight
    cls, _ = loss_class(term.loss)
    try:
        return cls(**options)
    except TypeError as exc:
        raise CompressError(f"loss {term.loss!r}: bad options {options!r} ({exc})") from None


class Objectives(nn.Module):
    """Adapters and losses of both stages; `compute(stage, ...)` returns (loss, {term: value})."""

    def __init__(self, config: DistillConfig, student_width: int, widths: dict[str, int | None], student_towers: dict[str, bool]):
        super().__init__()
        self.widths = widths
        self.student_towers = student_towers
        shared = [tower for tower in TOWERS if widths[tower] is not None and student_towers[tower]]
        if not shared:
            raise CompressError(
                f"nothing to distil: the teacher has towers {[t for t in TOWERS if widths[t] is not None]} "
                f"and the student {[t for t in TOWERS if student_towers[t]]}"
            )
        self.adapters = nn.ModuleDict(
            {
                tower: nn.Linear(student_width, widths[tower]) if widths[tower] != student_width else nn.Identity()
                for tower in shared
            }
        )
        options = config.loss_options
        self.stage1 = stage1_term(config.stage1_loss)
        self.stage2 = stage2_terms(config.stage2_losses, config.stage1_loss)
        self.losses = nn.ModuleDict(
            {term.key: _build_loss(term, options.get(term.loss, {})) for term in [self.stage1, *self.stage2]}
        )
        for term in self._stage2_of("affinity"):
            if widths["image"] is None or widths["text"] is None:
                raise CompressError(
                    f"stage-2 term {term.loss!r} (an affinity loss) needs a teacher with both an image and a text tower"
                )

    def _stage2_of(self, kind: str) -> list[Term]:
        return [term for term in self.stage2 if term.kind == kind]

    def needs(self, stage: str) -> Needs:
        if stage == "distill":
            return Needs(image="image" in self.adapters, text="text" in self.adapters, targets=True)
        if not all(self.student_towers.values()):
            raise CompressError("stage 2 (align) needs a student with both an image and a text tower")
        uses_teacher = any(term.kind in ("feature", "affinity") for term in self.stage2)
        return Needs(image=True, text=True, targets=uses_teacher)

    def teacher_towers(self) -> dict[str, bool]:
        """Which teacher embeddings any stage uses (the others need not be computed)."""
        affinity = bool(self._stage2_of("affinity"))
        return {tower: tower in self.adapters or affinity for tower in TOWERS}

    def stage_modules(self, stage: str) -> list[nn.Module]:
        """The objective's modules trained in `stage` (adapters only where a feature term uses them)."""
        if stage == "distill":
            return [self.adapters]
        modules = [self.losses[term.key] for term in self.stage2]
        if self._stage2_of("feature"):
            modules.append(self.adapters)
        return modules

    def _scales(self, kinds: tuple[str, ...]) -> list[torch.Tensor]:
        """The learnable logit scales (`scale()`) of the stage-2 losses of `kinds`, in that order."""
        terms = [term for kind in kinds for term in self._stage2_of(kind)]
        return [self.losses[t.key].scale() for t in terms if callable(getattr(self.losses[t.key], "scale", None))]

    def logit_scale(self) -> float | None:
        """The student's learned inverse temperature (a pair loss's, else an affinity loss's), for bundles and reports."""
        scales = self._scales(("pair", "affinity"))
        return float(scales[0].detach()) if scales else None

    def _feature_terms(self, term: Term, student: dict, targets: dict) -> dict[str, torch.Tensor]:
        terms = {}
        for tower in TOWERS:
            if tower in self.adapters and student.get(tower) is not None and targets.get(tower) is not None:
                if targets[tower].shape[-1] != self.widths[tower]:
                    raise CompressError(
                        f"{tower} targets are {targets[tower].shape[-1]} wide, but the teacher's "
                        f"embed_dim is {self.widths[tower]}"
                    )
                terms[f"{term.log}{tower}"] = self.losses[term.key](self.adapters[tower](student[tower]), targets[tower])
        return terms

    def compute(
        self, stage: str, student: dict[str, torch.Tensor | None], targets: dict[str, torch.Tensor | None] | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The stage's total loss and its terms (detached, on the device). `student`: raw tower outputs
        {"image", "text"}; `targets`: teacher embeddings or None."""
        targets = targets or {}
        if stage == "distill":
            terms = self._feature_terms(self.stage1, student, targets)
            if not terms:
                raise CompressError("stage 1: the targets hold no embedding for any tower the student was run on")
        elif stage == "align":
            terms = {}
            # An affinity loss uses the pair loss's temperature when there is one: one student temperature.
            pair_scales = self._scales(("pair",)) if self._stage2_of("affinity") else []
            for term in self.stage2:
                loss = self.losses[term.key]
                if term.kind == "pair":
                    terms[term.log] = loss(student["image"], student["text"])
                elif term.kind == "feature":
                    terms.update(self._feature_terms(term, student, targets))
                else:
                    if targets.get("image") is None or targets.get("text") is None:
                        raise CompressError(f"stage 2 {term.loss}: the targets lack image or text embeddings")
                    terms[term.log] = loss(
                        student["image"],
                        student["text"],
                        targets["image"],
                        targets["text"],
                        logit_scale=pair_scales[0] if pair_scales else None,
                    )
        else:
            raise CompressError(f"unknown stage {stage!r}; stages: distill, align")
        total = torch.stack(list(terms.values())).sum()
        return total, {name: value.detach() for name, value in terms.items()}
