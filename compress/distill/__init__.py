"""Two-stage distillation (feature distillation, then contrastive alignment) with checkpoints and resume."""

from compress.distill.config import DistillConfig
from compress.distill.targets import Targets, TeacherTargets
from compress.distill.trainer import Distiller

__all__ = ["DistillConfig", "Distiller", "Targets", "TeacherTargets"]
