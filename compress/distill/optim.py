"""Optimizer and learning-rate schedule for one training stage."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from compress.errors import CompressError


def parameter_groups(
    modules: Iterable[tuple[str, nn.Module]], weight_decay: float, no_decay_modules: Iterable[nn.Module] = ()
) -> list[dict]:
    """Trainable parameters split into decayed (matrices) and not decayed (biases, norms, temperatures).

    As in CLIP training, one-dimensional parameters, scalars and everything in `no_decay_modules`
    (loss parameters such as the learnable temperature) get no weight decay. A parameter shared by
    two modules is listed once.
    """
    exempt = {id(p) for m in no_decay_modules for p in m.parameters()}
    decay, no_decay, seen = [], [], set()
    for _, module in modules:
        for param in module.parameters():
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if param.ndim < 2 or id(param) in exempt else decay).append(param)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if not groups:
        raise CompressError("nothing to train: no parameter requires a gradient")
    return groups


def build_optimizer(name: str, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    raise CompressError(f"unknown optimizer {name!r}; optimizers: adamw, adam, sgd")


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based).

    Linear warmup over `warmup_steps`, then constant, or a cosine decay to 0 at `total_steps`.
    """
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise CompressError(f"unknown schedule {schedule!r}; schedules: cosine, constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, schedule: str
) -> torch.optim.lr_scheduler.LambdaLR:
    lr_factor(0, total_steps, warmup_steps, schedule)  # reject an unknown schedule before training starts
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, schedule))
