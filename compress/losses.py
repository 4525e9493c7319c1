"""Distillation and alignment losses; each is registered under the `compress.losses` entry-point group.

Each class declares its `kind` (the plugin contract, `compress.protocols.Loss`): "feature" losses
compare a student tower with the teacher, "pair" losses the student's own image and text
embeddings, "affinity" losses the student's image-text similarities with the teacher's.

Stage 1 (feature distillation) regresses the teacher's L2-normalised embedding with the
student's normalised embedding (after an adapter when dimensions differ; the adapter belongs to
the trainer, not the loss): `MSEFeatureLoss`, `SmoothL1FeatureLoss`, `CosineFeatureLoss`.

Stage 2 (alignment) is symmetric InfoNCE with a learnable temperature (`InfoNCELoss`), optionally
plus TinyCLIP-style affinity mimicking (`AffinityMimicLoss`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from compress.errors import CompressError

CLIP_INIT_TEMPERATURE = 0.07
CLIP_MAX_LOGIT_SCALE = 100.0


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.ndim != 2 or b.ndim != 2:
        raise CompressError(f"{what}: expected two [N, D] tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] != b.shape[0]:
        raise CompressError(f"{what}: batch sizes differ ({a.shape[0]} vs {b.shape[0]})")


class FeatureLoss(nn.Module, ABC):
    """Base of the stage-1 losses: both embeddings are L2-normalised, then compared by `distance`."""

    kind = "feature"

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    @abstractmethod
    def distance(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Unweighted scalar distance between two batches of unit vectors."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """`student` [N, D] (already mapped to the teacher's width), `teacher` [N, D] -> weighted scalar."""
        _check_pair(student, teacher, type(self).__name__)
        if student.shape != teacher.shape:
            raise CompressError(
                f"{type(self).__name__}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} "
                "embeddings differ in width; map the student through an adapter first"
            )
        student = F.normalize(student.float(), dim=-1)
        teacher = F.normalize(teacher.float(), dim=-1)
        return self.weight * self.distance(student, teacher)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class MSEFeatureLoss(FeatureLoss):
    """Mean squared error between normalised student and teacher embeddings (CLIP-KD's strongest single loss)."""

    def distance(self, student, teacher):
        return F.mse_loss(student, teacher)


class SmoothL1FeatureLoss(FeatureLoss):
    """Smooth L1 (Huber with threshold `beta`) between normalised embeddings, as in DC-CLIP stage 1."""

    def __init__(self, weight: float = 1.0, beta: float = 1.0):
        super().__init__(weight)
        if beta <= 0:
            raise CompressError(f"SmoothL1FeatureLoss: beta must be > 0, got {beta}")
        self.beta = float(beta)

    def distance(self, student, teacher):
        return F.smooth_l1_loss(student, teacher, beta=self.beta)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, beta={self.beta}"


class CosineFeatureLoss(FeatureLoss):
    """Mean of 1 - cos(student, teacher)."""

    def distance(self, student, teacher):
        return (1.0 - (student * teacher).sum(dim=-1)).mean()


class LearnableLogitScale(nn.Module):
    """CLIP's learnable inverse temperature: stored as a log, used as exp(log) clamped at `max_scale`."""

    def __init__(
        self, init_temperature: float = CLIP_INIT_TEMPERATURE, max_scale: float = CLIP_MAX_LOGIT_SCALE, learnable: bool = True
    ):
        super().__init__()
        if init_temperature <= 0:
            raise CompressError(f"temperature must be > 0, got {init_temperature}")
        value = torch.tensor(math.log(1.0 / init_temperature))
        self.logit_scale = nn.Parameter(value, requires_grad=learnable)
        self.max_scale = float(max_scale)

    def scale(self) -> torch.Tensor:
        # Clamping the log keeps the scale at `max_scale` and stops its gradient there, like CLIP.
        return self.logit_scale.clamp(max=math.log(self.max_scale)).exp()


def _similarity(image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [N_image, N_text] of the normalised embeddings."""
    return F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T


class InfoNCELoss(LearnableLogitScale):
    """Symmetric InfoNCE, (L_image->text + L_text->image) / 2, with a learnable temperature.

    Row i of the image batch and row i of the text batch are the positive pair; every other row
    in the batch is a negative (one contrastive batch, whatever the captions' languages).
    """

    kind = "pair"

    def __init__(
        self,
        weight: float = 1.0,
        init_temperature: float = CLIP_INIT_TEMPERATURE,
        max_scale: float = CLIP_MAX_LOGIT_SCALE,
        learnable: bool = True,
    ):
        super().__init__(init_temperature, max_scale, learnable)
        self.weight = float(weight)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        _check_pair(image, text, "InfoNCELoss")
        logits = self.scale() * _similarity(image, text)
        labels = torch.arange(logits.shape[0], device=logits.device)
        image_to_text = F.cross_entropy(logits, labels)
        text_to_image = F.cross_entropy(logits.T, labels)
        return self.weight * (image_to_text + text_to_image) / 2

    def extra_repr(self) -> str:
        return f"weight={self.weight}, max_scale={self.max_scale}"


class AffinityMimicLoss(LearnableLogitScale):
    """TinyCLIP affinity mimicking: KL(teacher || student) over image->text and text->image softmaxes.

    The teacher's similarities are sharpened at its own fixed `teacher_temperature`; the student's
    use a learnable scale, or the one passed to `forward` (the InfoNCE loss's, so both stage-2 terms
    share the student's temperature).
    """

    kind = "affinity"

    def __init__(
        self,
        weight: float = 1.0,
        teacher_temperature: float = 0.01,
        init_temperature: float = CLIP_INIT_TEMPERATURE,
        max_scale: float = CLIP_MAX_LOGIT_SCALE,
        learnable: bool = True,
    ):
        super().__init__(init_temperature, max_scale, learnable)
        if teacher_temperature <= 0:
            raise CompressError(f"AffinityMimicLoss: teacher_temperature must be > 0, got {teacher_temperature}")
        self.weight = float(weight)
        self.teacher_temperature = float(teacher_temperature)

    def forward(
        self,
        student_image: torch.Tensor,
        student_text: torch.Tensor,
        teacher_image: torch.Tensor,
        teacher_text: torch.Tensor,
        logit_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        _check_pair(student_image, student_text, "AffinityMimicLoss (student)")
        _check_pair(teacher_image, teacher_text, "AffinityMimicLoss (teacher)")
        if student_image.shape[0] != teacher_image.shape[0]:
            raise CompressError(
                f"AffinityMimicLoss: student batch {student_image.shape[0]} != teacher batch {teacher_image.shape[0]}"
            )
        scale = self.scale() if logit_scale is None else logit_scale
        student_logits = scale * _similarity(student_image, student_text)
        teacher_logits = _similarity(teacher_image, teacher_text) / self.teacher_temperature
        image_to_text = _kl(student_logits, teacher_logits)
        text_to_image = _kl(student_logits.T, teacher_logits.T)
        return self.weight * (image_to_text + text_to_image) / 2

    def extra_repr(self) -> str:
        return f"weight={self.weight}, teacher_temperature={self.teacher_temperature}"


def _kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(softmax(teacher) || softmax(student))."""
    return F.kl_div(
        F.log_softmax(student_logits, dim=-1),
        F.log_softmax(teacher_logits.detach(), dim=-1),
        log_target=True,
        reduction="batchmean",
    )
