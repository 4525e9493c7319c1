"""`Distiller`: two-stage training of a student against a frozen teacher, with checkpoints and resume.

    distiller = Distiller(teacher, student, data=open_data("demo"), run_dir="runs/demo", epochs=2)
    report = distiller.fit("both")             # stage 1 (feature distillation), then stage 2 (alignment)
    report = distiller.fit("both", resume=True)  # after a crash: continue from the last checkpoint
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import save_model
from torch import nn

from compress.console import make_console
from compress.data.loader import SampleBatch, SkipStats
from compress.distill import checkpoint as ckpt
from compress.distill.batches import BatchStream
from compress.distill.config import STAGE_PLANS, STAGES, DistillConfig
from compress.distill.objectives import Objectives, student_towers, teacher_widths
from compress.distill.optim import build_optimizer, build_scheduler, parameter_groups
from compress.distill.report import plot_loss_curves, summary_table, write_report
from compress.distill.state import TrainState
from compress.distill.targets import TeacherTargets
from compress.errors import CompressError

STAGE_SEED_OFFSETS = {"distill": 0, "align": 1_000_003}  # distinct data orders for the two stages
PROGRESS_REFRESH_PER_SECOND = 2


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise CompressError(f"device {device!r} is not a torch device (use 'auto', 'cpu' or 'cuda')") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CompressError(f"device {device!r} asked for, but CUDA is not available here")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" on CPU; mixed precision (bf16 where supported, else fp16) on a GPU."""
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision in ("bf16", "fp16") and device.type != "cuda":
        raise CompressError(f"precision {precision!r} (mixed precision) needs a GPU; on {device.type} use fp32")
    return precision


class Distiller:
    """Distils `teacher` into `student` in two stages and leaves a run folder behind.

    Stage 1 ("distill"): the student's towers regress the teacher's embeddings (`stage1_loss`:
    "smooth_l1", "mse" or "cosine"), through linear adapters where the widths differ; a tower the
    teacher lacks is skipped. Stage 2 ("align"): symmetric InfoNCE between the student's own
    image and text embeddings with a learnable temperature, optionally plus "feature" (the stage-1
    term) and "affinity" (TinyCLIP affinity mimicking), each with a weight:
    `stage2_losses={"infonce": 1.0, "affinity": 0.5}`.

    `lr`, `batch_size`, `epochs` and `steps` take one value or a per-stage mapping such as
    `{"distill": 3, "align": 1}`; `steps` (optimizer steps per stage), when given, replaces `epochs`.
    `targets` replaces the online teacher calls with any callable
    `targets(samples) -> {"image": Tensor | None, "text": Tensor | None}` (e.g. a teacher cache).

    The run folder gets `checkpoints/` (every `checkpoint_every` global steps and at each epoch end),
    `report.json`, `loss_curves.png`, the trained `student/` (its `save_pretrained`) and
    `adapters.safetensors` when the adapters have weights.
    """

    def __init__(self, teacher, student, data=None, val_data=None, run_dir: str | Path | None = None,
                 name: str | None = None, *, targets=None, stage1_loss: str = "smooth_l1",
                 stage2_losses: Any = ("infonce",), loss_options: Mapping[str, Mapping[str, Any]] | None = None,
                 optimizer: str = "adamw", lr: Any = 1e-3, weight_decay: float = 0.05, schedule: str = "cosine",
                 warmup_steps: int = 0, batch_size: Any = 32, epochs: Any = 1, steps: Any = None,
                 grad_clip: float | None = 1.0, seed: int = 0, checkpoint_every: int = 500,
                 keep_checkpoints: int = 2, device: str = "auto", precision: str = "auto", num_workers: int = 0,
                 progress: bool = True, console: Console | None = None):
        if data is None:
            raise CompressError("Distiller needs training data: data=open_data(...)")
        self.config = DistillConfig(
            stage1_loss=stage1_loss, stage2_losses=stage2_losses,
            loss_options={k: dict(v) for k, v in (loss_options or {}).items()}, optimizer=optimizer, lr=lr,
            weight_decay=weight_decay, schedule=schedule, warmup_steps=warmup_steps, batch_size=batch_size,
            epochs=epochs, steps=steps, grad_clip=grad_clip, seed=seed, checkpoint_every=checkpoint_every,
            keep_checkpoints=keep_checkpoints, device=str(device), precision=precision, num_workers=num_workers,
        )
        self.name = name or (Path(run_dir).name if run_dir is not None else time.strftime("distill-%Y%m%d-%H%M%S"))
        self.run_dir = Path(run_dir) if run_dir is not None else Path("runs") / self.name
        self.teacher, self.student = teacher, student
        self.data, self.val_data = _as_dataset(data, "data"), _as_dataset(val_data, "val_data")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.console = console or make_console()
        self.show_progress = progress

        widths = teacher_widths(teacher)
        # Adapters start from the run's seed without disturbing the caller's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.objectives = Objectives(self.config, int(student.embed_dim), widths, student_towers(student))
        self.targets = targets if targets is not None else TeacherTargets(teacher, **self.objectives.teacher_towers())
        self.trainable = nn.ModuleDict({"student": student, "objectives": self.objectives}).to(self.device)
        if isinstance(teacher, nn.Module):
            teacher.to(self.device).eval()

        self.state: TrainState | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler = None
        self._scaler: torch.amp.GradScaler | None = None
        self._optimizer_stage: str | None = None
        self._pending: ckpt.LoadedCheckpoint | None = None  # optimizer state waiting for its stage to start
        self._val_decode_skips: list[tuple[str, str, str]] = []

    # ------------------------------------------------------------------ public

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def fit(self, stage: str = "both", resume: bool = False) -> dict[str, Any]:
        """Train `stage` ("distill", "align" or "both"); returns the report also written to report.json.

        `resume=True` continues from the newest checkpoint in the run folder: weights, optimizer,
        schedule, random states and data position are restored, so the run ends exactly where an
        uninterrupted one would. A fresh fit in a folder holding old checkpoints removes them.
        Stages this run has already completed are not repeated.
        """
        if stage not in STAGE_PLANS:
            raise CompressError(f"unknown stage {stage!r}; stages: {', '.join(STAGE_PLANS)}")
        plan = STAGE_PLANS[stage]
        if resume:
            self._restore(plan)
        elif self.state is None:
            self._start_fresh()
        started = time.perf_counter()
        for name in plan:
            if name not in self.state.completed_stages:
                self._train_stage(name)
        report = self._finish(plan, time.perf_counter() - started)
        return report

    # ------------------------------------------------------------------ start / resume

    def _start_fresh(self) -> None:
        removed = ckpt.remove_checkpoints(self.checkpoint_dir)
        if removed:
            self.console.print(f"[yellow]{self.run_dir}: fresh start, removed {removed} old checkpoint(s)")
        seed = self.config.seed
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.state = TrainState()

    def _restore(self, plan: tuple[str, ...]) -> None:
        path = ckpt.latest_checkpoint(self.checkpoint_dir)
        if path is None:
            raise CompressError(f"{self.checkpoint_dir}: no checkpoint to resume from")
        loaded = ckpt.load_checkpoint(path, self.trainable)
        state = TrainState.from_dict(loaded.state["train"])
        if state.stage is not None and state.stage not in plan:
            raise CompressError(
                f"{path}: the run stopped inside stage {state.stage!r}; resume with stage={state.stage!r} or 'both'"
            )
        changed = _changed_settings(loaded.state.get("config", {}), self.config.to_dict())
        if changed:
            self.console.print(f"[yellow]resuming with changed settings: {', '.join(changed)}")
        ckpt.restore_rng(loaded.rng_tensors, loaded.state["rng"])
        state.resumed_from.append(path.name)
        self.state = state
        self._pending = loaded if state.stage is not None else None
        self._optimizer = self._scheduler = self._scaler = self._optimizer_stage = None
        self.console.print(f"resuming {self.name} from {path.name} (global step {state.global_step})")

    # ------------------------------------------------------------------ one stage

    def _total_steps(self, stage: str) -> int:
        steps = self.config.steps_for(stage)
        if steps is not None:
            return steps
        return self.config.epochs_for(stage) * math.ceil(len(self.data) / self.config.batch_size_for(stage))

    def _stage_done(self, stage: str) -> bool:
        steps = self.config.steps_for(stage)
        if steps is not None:
            return self.state.stage_step >= steps
        return self.state.epoch >= self.config.epochs_for(stage)

    def _build_optimizer(self, stage: str) -> None:
        modules = [("student", self.student)] + [(f"objective{i}", m) for i, m in
                                                 enumerate(self.objectives.stage_modules(stage))]
        groups = parameter_groups(modules, self.config.weight_decay, no_decay_modules=[self.objectives.losses])
        lr = self.config.lr_for(stage)
        self._optimizer = build_optimizer(self.config.optimizer, groups, lr)
        self._scheduler = build_scheduler(self._optimizer, self._total_steps(stage), self.config.warmup_steps,
                                          self.config.schedule)
        self._scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        if self._pending is not None:
            saved = self._pending.state
            self._optimizer.load_state_dict(self._pending.optimizer)
            self._scheduler.load_state_dict(saved["scheduler"])
            if self._scaler is not None and saved.get("scaler"):
                self._scaler.load_state_dict(saved["scaler"])
            self._pending = None

    def _train_stage(self, stage: str) -> None:
        needs = self.objectives.needs(stage)  # refuses a stage this student and teacher cannot train
        state = self.state
        if state.stage != stage:
            state.begin_stage(stage)
        if self._optimizer_stage != stage:  # kept when an interrupted fit is called again in this process
            self._build_optimizer(stage)
            self._optimizer_stage = stage
        batch_size = self.config.batch_size_for(stage)
        seed = self.config.seed + STAGE_SEED_OFFSETS[stage]
        total = self._total_steps(stage)
        self.trainable.train()

        with self._progress() as progress:
            task = progress.add_task(stage, total=total, completed=state.stage_step, epoch=state.epoch,
                                     loss="-", rate="-")
            rate_start, rate_samples = time.perf_counter(), 0
            while not self._stage_done(stage):
                stream = BatchStream(self.data, batch_size, seed=seed, epoch=state.epoch, start=state.position,
                                     num_workers=self.config.num_workers)
                for batch in stream:
                    if batch.samples:
                        tick = time.perf_counter()
                        loss, parts, lr = self._step(stage, batch.samples, needs)
                        state.seconds[stage] += time.perf_counter() - tick
                        state.samples[stage] += len(batch.samples)
                        state.stage_step += 1
                        state.global_step += 1
                        state.loss_log.append({"global_step": state.global_step, "stage": stage,
                                               "epoch": state.epoch, "stage_step": state.stage_step,
                                               "loss": loss, "lr": lr, "samples": len(batch.samples), **parts})
                        rate_samples += len(batch.samples)
                        rate = rate_samples / max(time.perf_counter() - rate_start, 1e-9)
                        progress.update(task, completed=state.stage_step, epoch=state.epoch,
                                        loss=f"{loss:.4f}", rate=f"{rate:.1f}")
                    # The position moves only once the batch is trained on, so a failed step is retried.
                    state.position += batch.consumed
                    state.note_skips(batch.skips, batch.left_out)
                    epoch_end = state.position >= len(self.data)
                    if epoch_end or self._stage_done(stage):  # a step budget can end a stage mid-epoch
                        self._close_epoch(stage, needs)
                        if epoch_end:
                            state.epoch, state.position, state.epoch_left_out = state.epoch + 1, 0, 0
                    stage_end = self._stage_done(stage)
                    if stage_end:
                        state.finish_stage()
                    periodic = bool(batch.samples) and state.global_step % self.config.checkpoint_every == 0
                    if stage_end or epoch_end or periodic:
                        self._save_checkpoint()
                    if stage_end or epoch_end:
                        break

    def _step(self, stage: str, samples, needs) -> tuple[float, dict[str, float], float]:
        optimizer = self._optimizer
        lr = optimizer.param_groups[0]["lr"]
        optimizer.zero_grad(set_to_none=True)
        loss, parts = self._batch_loss(stage, samples, needs)
        if not torch.isfinite(loss):
            raise CompressError(f"stage {stage}, global step {self.state.global_step + 1}: the loss is {loss.item()}"
                                " (lower the learning rate or check the data)")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            self._scaler.unscale_(optimizer)
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            self._scaler.step(optimizer)
            self._scaler.update()
        else:
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            optimizer.step()
        self._scheduler.step()
        return float(loss.detach()), parts, float(lr)

    def _batch_loss(self, stage: str, samples, needs) -> tuple[torch.Tensor, dict[str, float]]:
        """The stage's loss on one batch (gradients flow into the student, adapters and loss parameters)."""
        targets = None
        if needs.targets:
            raw = self.targets(samples)
            targets = {k: (v.to(self.device, torch.float32) if v is not None else None) for k, v in raw.items()}
        outputs: dict[str, torch.Tensor | None] = {"image": None, "text": None}
        with self._autocast():
            if needs.image:
                pixels = self.student.preprocess_images([s.image for s in samples]).to(self.device)
                outputs["image"] = self.student.image_tower(pixels)
            if needs.text:
                ids = self.student.tokenize([s.caption for s in samples]).to(self.device)
                outputs["text"] = self.student.text_tower(ids)
        outputs = {k: (v.float() if v is not None else None) for k, v in outputs.items()}
        return self.objectives.compute(stage, outputs, targets)

    def _autocast(self):
        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            return torch.autocast(device_type=self.device.type, dtype=dtype)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ epochs, validation, checkpoints

    def _close_epoch(self, stage: str, needs) -> None:
        state = self.state
        rows = state.steps_of(stage, state.epoch)
        if not rows and state.epoch_left_out:
            raise CompressError(f"stage {stage}, epoch {state.epoch}: all {state.epoch_left_out} samples read were "
                                "skipped, nothing to train on (see the dataset's skip counts)")
        entry = {
            "epoch": state.epoch,
            "steps": len(rows),
            "samples": sum(r["samples"] for r in rows),
            "mean_loss": sum(r["loss"] for r in rows) / len(rows) if rows else None,
            "last_global_step": state.global_step,
            "complete": state.position >= len(self.data),
            "left_out": state.epoch_left_out,
            "val_loss": self._validate(stage, needs) if self.val_data is not None else None,
        }
        state.epochs[stage].append(entry)

    @torch.no_grad()
    def _validate(self, stage: str, needs) -> float | None:
        """Mean stage loss over the validation set, in eval mode, in a fixed order."""
        self.trainable.eval()
        total, count = 0.0, 0
        try:
            for batch in BatchStream(self.val_data, self.config.batch_size_for(stage), seed=None, epoch=0, start=0,
                                     num_workers=self.config.num_workers):
                self._val_decode_skips.extend(batch.skips)
                if batch.samples:
                    loss, _ = self._batch_loss(stage, batch.samples, needs)
                    total += float(loss) * len(batch.samples)
                    count += len(batch.samples)
        finally:
            self.trainable.train()
        return total / count if count else None

    def _save_checkpoint(self) -> Path:
        saved = {
            "train": self.state.to_dict(),
            "config": self.config.to_dict(),
            "name": self.name,
            "scheduler": self._scheduler.state_dict() if self._scheduler is not None else None,
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
        }
        optimizer_state = self._optimizer.state_dict() if self.state.stage is not None else None
        return ckpt.save_checkpoint(self.checkpoint_dir, self.state.global_step, self.trainable, optimizer_state,
                                    saved, keep=self.config.keep_checkpoints)

    # ------------------------------------------------------------------ the end of a fit

    def _progress(self) -> Progress:
        # Redrawing twice a second is enough for a bar whose finest field is whole seconds; rich's
        # default of ten redraws holds the GIL often enough to slow training by a few percent.
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}"), TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} samples/s"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, disable=not self.show_progress, refresh_per_second=PROGRESS_REFRESH_PER_SECOND,
        )

    def _stage_summary(self, stage: str) -> dict[str, Any]:
        state = self.state
        rows = state.steps_of(stage)
        seconds = state.seconds.get(stage, 0.0)
        samples = state.samples.get(stage, 0)
        return {
            "steps": len(rows),
            "completed": stage in state.completed_stages,
            "final_loss": rows[-1]["loss"] if rows else None,
            "epochs": state.epochs.get(stage, []),
            "samples": samples,
            "seconds": seconds,
            "samples_per_s": samples / seconds if seconds else 0.0,
        }

    def _skipped(self) -> dict[str, dict[str, Any]]:
        """Skipped samples by reason, per dataset: found when opened plus failed decodes, each sample once."""
        train = SkipStats.of(self.data)
        train.add_batch(SampleBatch(skips=[tuple(entry) for entry in self.state.decode_skips]))
        out = {"train": train.to_dict()}
        if self.val_data is not None:
            val = SkipStats.of(self.val_data)
            val.add_batch(SampleBatch(skips=self._val_decode_skips))
            out["val"] = val.to_dict()
        return out

    def _finish(self, plan: tuple[str, ...], wall_seconds: float) -> dict[str, Any]:
        state = self.state
        self.trainable.eval()  # the student leaves training ready to embed (no dropout)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        student_dir = self.run_dir / "student"
        self.student.save_pretrained(student_dir)
        adapters_file = None
        if any(True for _ in self.objectives.adapters.parameters()):
            adapters_file = self.run_dir / "adapters.safetensors"
            save_model(self.objectives.adapters, str(adapters_file))
        stages = {s: self._stage_summary(s) for s in STAGES if s in plan or s in state.completed_stages}
        report = {
            "name": self.name,
            "run_dir": str(self.run_dir),
            "config": self.config.to_dict(),
            "teacher": {"name": getattr(self.teacher, "name", type(self.teacher).__name__),
                        "fingerprint": getattr(self.teacher, "fingerprint", None),
                        "widths": self.objectives.widths},
            "student": {"config": getattr(self.student, "config", None), "embed_dim": int(self.student.embed_dim),
                        "folder": str(student_dir)},
            "adapters": {tower: _describe_adapter(m) for tower, m in self.objectives.adapters.items()},
            "adapters_file": str(adapters_file) if adapters_file else None,
            "logit_scale": self.objectives.logit_scale(),
            "device": str(self.device),
            "precision": self.precision,
            "global_step": state.global_step,
            "completed_stages": list(state.completed_stages),
            "stages": stages,
            "epoch_losses": {s: [e["mean_loss"] for e in info["epochs"]] for s, info in stages.items()},
            "loss_log": state.loss_log,
            "skipped": self._skipped(),
            "timings": {"fit_wall_seconds": wall_seconds,
                        "train_seconds": {s: state.seconds.get(s, 0.0) for s in stages}},
            "resumed_from": list(state.resumed_from),
        }
        write_report(self.run_dir, report)
        plot_loss_curves(state.loss_log, self.run_dir / "loss_curves.png", epochs=state.epochs)
        skipped = {split: info["by_reason"] for split, info in report["skipped"].items()}
        self.console.print(summary_table(stages, skipped, title=f"distillation summary: {self.name}"))
        self.console.print(f"run folder: {self.run_dir}")
        return report


def _as_dataset(data, what: str):
    if data is None:
        return None
    if isinstance(data, (str, Path, dict)):
        from compress.api import open_data

        data = open_data(data)
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise CompressError(f"{what}: expected a map-style dataset of Samples, got {type(data).__name__}")
    if len(data) == 0:
        raise CompressError(f"{what}: the dataset is empty")
    return data


def _describe_adapter(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, nn.Linear):
        return {"kind": "linear", "in": module.in_features, "out": module.out_features}
    return {"kind": "identity"}


def _changed_settings(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    return [f"{k}: {before[k]!r} -> {now[k]!r}" for k in now
            if k in before and _jsonish(before[k]) != _jsonish(now[k])]


def _jsonish(value):
    if isinstance(value, (tuple, list)):
        return [_jsonish(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonish(v) for k, v in value.items()}
    return value
