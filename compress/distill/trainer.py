"""`Distiller`: two-stage training of a student against a frozen teacher, with checkpoints and resume.

    distiller = Distiller(teacher, student, data=open_data("demo"), run_dir="runs/demo", epochs=2)
    report = distiller.fit("both")             # stage 1 (feature distillation), then stage 2 (alignment)
    report = distiller.fit("both", resume=True)  # after a crash: continue from the last checkpoint

The settings live in `DistillConfig` (config.py), the losses in `Objectives` (objectives.py), the
checkpoint format in checkpoint.py and the report in report.py; this file is the training loop.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from safetensors.torch import save_model
from torch import nn

from compress.console import make_console
from compress.device import autocast, resolve_device, resolve_precision
from compress.distill import checkpoint as ckpt
from compress.distill.batches import BatchStream, RankBatchStream
from compress.distill.config import STAGE_PLANS, STAGES, DistillConfig
from compress.distill.distributed import current_world, gather_rows
from compress.distill.objectives import Objectives, student_towers, teacher_widths
from compress.distill.optim import build_optimizer, build_scheduler, parameter_groups
from compress.distill.report import (
    ADAPTERS_FILE,
    CHECKPOINT_DIR,
    LOSS_CURVES_FILE,
    STUDENT_DIR,
    plot_loss_curves,
    progress_bar,
    run_report,
    stage_summary,
    summary_table,
    write_report,
)
from compress.distill.state import TrainState
from compress.distill.step_log import PendingLosses
from compress.distill.targets import TeacherTargets
from compress.errors import CompressError
from compress.protocols import check_student, check_teacher

STAGE_SEED_OFFSETS = {"distill": 0, "align": 1_000_003}  # distinct data orders for the two stages


class Distiller:
    """Distils `teacher` into `student` in two stages and leaves a run folder behind.

    Settings come from `config` (a `DistillConfig`; default: its defaults) with any keyword
    overrides applied on top, e.g. `Distiller(t, s, data=d, lr={"distill": 2e-3, "align": 5e-4},
    steps=100)`; an unknown keyword is an error listing the settings. See `DistillConfig`.

    Stage 1 ("distill"): the student's towers regress the teacher's embeddings (`stage1_loss`, a
    registered "feature" loss), through linear adapters where the widths differ; a tower the
    teacher lacks is skipped. Stage 2 ("align"): the weighted `stage2_losses`, by default symmetric
    InfoNCE between the student's own image and text embeddings with a learnable temperature;
    "feature" (the stage-1 loss again), "affinity" (TinyCLIP affinity mimicking) or any loss
    registered under `compress.losses` can be added: `stage2_losses={"infonce": 1.0, "affinity": 0.5}`.

    `targets` replaces the online teacher calls with any callable
    `targets(samples) -> {"image": Tensor | None, "text": Tensor | None}` (e.g. a teacher cache).
    The teacher and student are checked on the way in (`compress.protocols.check_teacher` /
    `check_student`): what they lack is one error, and a teacher's optional parts get defaults.

    The run folder gets `checkpoints/` (every `checkpoint_every` global steps and at each epoch end),
    `report.json`, `loss_curves.png`, the trained `student/` (its `save_pretrained`) and
    `adapters.safetensors` when the adapters have weights.
    """

    def __init__(
        self,
        teacher,
        student,
        data=None,
        val_data=None,
        run_dir: str | Path | None = None,
        name: str | None = None,
        *,
        config: DistillConfig | None = None,
        targets=None,
        progress: bool = True,
        console: Console | None = None,
        **overrides,
    ):
        if data is None:
            raise CompressError("Distiller needs training data: data=open_data(...)")
        if config is not None and not isinstance(config, DistillConfig):
            raise CompressError(
                f"Distiller: config is a DistillConfig, not {type(config).__name__} (or pass the settings as keywords)"
            )
        self.config = (config if config is not None else DistillConfig()).with_overrides(overrides, "Distiller")
        self.name = name or (Path(run_dir).name if run_dir is not None else time.strftime("distill-%Y%m%d-%H%M%S"))
        self.run_dir = Path(run_dir) if run_dir is not None else Path("runs") / self.name
        self.teacher = check_teacher(teacher, "Distiller teacher")
        self.student = check_student(student, "Distiller student")
        self.data, self.val_data = _as_dataset(data, "data"), _as_dataset(val_data, "val_data")
        # Inside an initialised process group (torchrun): one rank of a data-parallel run.
        self.world = current_world()
        self.device = resolve_device(self.config.device)
        if self.world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        self.precision = resolve_precision(self.config.precision, self.device)
        self.console = console or make_console()
        if not self.world.writes:
            self.console = Console(quiet=True)
        self.show_progress = progress and self.world.writes

        # Adapters start from the run's seed without disturbing the caller's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.objectives = Objectives(
                self.config, int(student.embed_dim), teacher_widths(self.teacher), student_towers(student)
            )
        self.targets = targets if targets is not None else TeacherTargets(self.teacher, **self.objectives.teacher_towers())
        self.trainable = nn.ModuleDict({"student": student, "objectives": self.objectives}).to(self.device)
        self._forward = _StepForward(self)
        self._model: nn.Module = self._forward  # DistributedDataParallel around it under a process group
        if isinstance(teacher, nn.Module):
            teacher.to(self.device).eval()

        self.state: TrainState | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler = None
        self._scaler: torch.amp.GradScaler | None = None
        self._optimizer_stage: str | None = None
        self._pending: ckpt.LoadedCheckpoint | None = None  # optimizer state waiting for its stage to start
        self._losses = PendingLosses()  # the latest steps' losses, still on the device
        self._window_start = 0.0  # when the training time not yet added to the stage's seconds began
        self.val_decode_skips: list[tuple[str, str, str]] = []
        self.qat_layers = 0  # linear layers fake-quantized during alignment (config.qat)

    # ------------------------------------------------------------------ public

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    def fit(self, stage: str = "both", resume: bool = False, checkpoint: str | Path | None = None) -> dict[str, Any]:
        """Train `stage` ("distill", "align" or "both"); returns the report also written to report.json.

        `resume=True` continues from the newest checkpoint in the run folder (or from `checkpoint`,
        a checkpoint folder, e.g. one kept from the end of stage 1): weights, optimizer, schedule,
        random states and data position are restored, so the run ends exactly where an
        uninterrupted one would. A fresh fit in a folder holding old checkpoints removes them.
        Stages this run has already completed are not repeated.
        """
        if stage not in STAGE_PLANS:
            raise CompressError(f"unknown stage {stage!r}; stages: {', '.join(STAGE_PLANS)}")
        if checkpoint is not None and not resume:
            raise CompressError("Distiller.fit: checkpoint= is where a resumed fit starts; pass resume=True with it")
        plan = STAGE_PLANS[stage]
        if resume:
            self._restore(plan, Path(checkpoint) if checkpoint is not None else None)
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
        if self.world.writes:
            removed = ckpt.remove_checkpoints(self.checkpoint_dir)
            if removed:
                self.console.print(f"[yellow]{self.run_dir}: fresh start, removed {removed} old checkpoint(s)")
        self.world.barrier()  # no rank reads the folder before it is cleared
        seed = self.config.seed
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.state = TrainState()

    def _restore(self, plan: tuple[str, ...], path: Path | None = None) -> None:
        path = path if path is not None else ckpt.latest_checkpoint(self.checkpoint_dir)
        if path is None:
            raise CompressError(f"{self.checkpoint_dir}: no checkpoint to resume from")
        loaded = ckpt.load_checkpoint(path, self.trainable)
        state = TrainState.from_dict(loaded.state["train"])
        if state.stage is not None and state.stage not in plan:
            raise CompressError(
                f"{path}: the run stopped inside stage {state.stage!r}; resume with stage={state.stage!r} or 'both'"
            )
        changed = self.config.changes_from(loaded.state.get("config", {}))
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
        modules = [("student", self.student)] + [(f"objective{i}", m) for i, m in enumerate(self.objectives.stage_modules(stage))]
        groups = parameter_groups(modules, self.config.weight_decay, no_decay_modules=[self.objectives.losses])
        lr = self.config.lr_for(stage)
        self._optimizer = build_optimizer(self.config.optimizer, groups, lr)
        self._scheduler = build_scheduler(
            self._optimizer, self._total_steps(stage), self.config.warmup_steps, self.config.schedule
        )
        # A disabled scaler passes the loss and the step through unchanged: one step path for every precision.
        self._scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        if self._pending is not None:
            saved = self._pending.state
            self._optimizer.load_state_dict(self._pending.optimizer)
            self._scheduler.load_state_dict(saved["scheduler"])
            if self._scaler.is_enabled() and saved.get("scaler"):
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
        quantization_aware = stage == "align" and self.config.qat
        if quantization_aware:
            self._prepare_qat()
        if self.world.distributed:
            self._model = self._wrap_ddp()
        self.trainable.train()

        with progress_bar(self.console, self.show_progress) as progress:
            task = progress.add_task(
                stage, total=self._total_steps(stage), completed=state.stage_step, epoch=state.epoch, loss="-", rate="-"
            )
            self._window_start = time.perf_counter()
            while not self._stage_done(stage):
                # Under a process group each rank reads its slice of the same global batches.
                ranked = {"world": self.world} if self.world.distributed else {}
                stream = (RankBatchStream if ranked else BatchStream)(
                    self.data,
                    batch_size,
                    seed=seed,
                    epoch=state.epoch,
                    start=state.position,
                    num_workers=self.config.num_workers,
                    **ranked,
                )
                for batch in stream:
                    if batch.total:
                        loss, terms, lr = self._step(stage, batch, needs)
                        self._losses.add(state.record_step(stage, batch.total, lr), loss, terms)
                        progress.update(task, completed=state.stage_step, epoch=state.epoch)
                    read = self._loss_read_due(stage, batch)
                    if read:
                        self._read_losses(stage, progress, task)
                    ended = self._after_batch(stage, batch, needs)
                    if read:
                        self._window_start = time.perf_counter()  # validation and checkpoints are not training time
                    if ended:
                        break  # the epoch or the stage ended: a new stream starts from the new position
        self._model = self._forward
        if quantization_aware:
            # The last checkpoint holds the same weights (fake quantizers add no state), so a resumed
            # run that finds the stage done gets the same converted student.
            from compress.quant import convert_qat

            convert_qat(self.student)

    def _wrap_ddp(self) -> nn.Module:
        """DistributedDataParallel over the student and the objectives (adapters, loss parameters).

        Built per stage (after QAT swaps layers in): a stage leaves some parameters unused (stage 1
        the temperature, stage 2 the adapters without a feature term), hence find_unused_parameters.
        """
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self._forward, device_ids=device_ids, find_unused_parameters=True)

    def _prepare_qat(self) -> None:
        """Fake-quantize the student's linear layers for alignment (kept when an interrupted fit is called again)."""
        from compress.quant import fake_quantized_modules, prepare_qat

        if fake_quantized_modules(self.student):
            return
        towers = tuple(f"{tower}_tower" for tower, present in student_towers(self.student).items() if present)
        # torchao builds each fake-quantized layer through nn.Linear's initialiser, which draws random
        # numbers: kept off the run's stream, so a resumed run (which prepares again) draws what the
        # uninterrupted one drew.
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            prepare_qat(self.student, towers)
        self.qat_layers = len(fake_quantized_modules(self.student))

    def _loss_read_due(self, stage: str, batch) -> bool:
        """Whether the held losses are read off the device after `batch`: every `log_every` steps, and
        before what reads the loss log (an epoch's end, the stage's end, a checkpoint)."""
        state = self.state
        return (
            len(self._losses) >= self.config.log_every
            or state.position + batch.consumed >= len(self.data)
            or self._stage_done(stage)
            or (bool(batch.total) and state.global_step % self.config.checkpoint_every == 0)
        )

    def _read_losses(self, stage: str, progress, task) -> None:
        """Fill the held losses into the loss log (one host sync), add the training time since the last
        read to the stage's seconds, and show the latest loss and the stage's samples/s."""
        last = self._losses.flush()
        now = time.perf_counter()
        state = self.state
        state.seconds[stage] += now - self._window_start
        self._window_start = now
        if last is not None:
            rate = state.samples[stage] / max(state.seconds[stage], 1e-9)
            progress.update(task, loss=f"{last['loss']:.4f}", rate=f"{rate:.1f}")

    def _after_batch(self, stage: str, batch, needs) -> bool:
        """Move the data position past `batch`, close the epoch or stage it ends, checkpoint; True at an end."""
        state = self.state
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
        periodic = bool(batch.total) and state.global_step % self.config.checkpoint_every == 0
        if stage_end or epoch_end or periodic:
            self._save_checkpoint()
        return stage_end or epoch_end

    def _step(self, stage: str, batch, needs) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
        """One optimizer step on one batch: loss, backward (scaled in fp16), clipping, step, schedule.

        The loss and its terms stay on the device (no host sync here); `_read_losses` reads them."""
        optimizer, scaler = self._optimizer, self._scaler
        lr = optimizer.param_groups[0]["lr"]
        optimizer.zero_grad(set_to_none=True)
        loss, terms = self._batch_loss(stage, batch.samples, needs, batch.rank_sizes)
        scaler.scale(loss).backward()
        if self.config.grad_clip:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], self.config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        self._scheduler.step()
        return loss.detach(), terms, float(lr)

    def _batch_loss(
        self, stage: str, samples, needs, rank_sizes: list[int] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The stage's loss on one batch (gradients flow into the student, adapters and loss parameters).

        Under a process group `samples` is this rank's slice and `rank_sizes` every rank's count:
        the loss is the global batch's, computed alike on every rank."""
        targets = pixels = ids = None
        if needs.targets:
            raw = self.targets(samples) if samples else self._no_targets()
            targets = {k: (v.to(self.device, torch.float32) if v is not None else None) for k, v in raw.items()}
        if needs.image and samples:
            pixels = self.student.preprocess_images([s.image for s in samples]).to(self.device)
            if self.config.channels_last and pixels.dim() == 4:
                pixels = pixels.contiguous(memory_format=torch.channels_last)
        if needs.text and samples:
            ids = self.student.tokenize([s.caption for s in samples]).to(self.device)
        model = self._model if rank_sizes is not None else self._forward
        return model(stage, needs, pixels, ids, targets, rank_sizes)

    def _no_targets(self) -> dict[str, torch.Tensor | None]:
        """Zero rows of each teacher embedding the targets give: a rank whose slice of the global batch is empty."""
        wanted = self.objectives.teacher_towers()
        return {
            tower: torch.zeros(0, width) if width is not None and wanted[tower] else None
            for tower, width in self.objectives.widths.items()
        }

    # ------------------------------------------------------------------ epochs, validation, checkpoints

    def _close_epoch(self, stage: str, needs) -> None:
        state = self.state
        rows = state.steps_of(stage, state.epoch)
        if not rows and state.epoch_left_out:
            raise CompressError(
                f"stage {stage}, epoch {state.epoch}: all {state.epoch_left_out} samples read were "
                "skipped, nothing to train on (see the dataset's skip counts)"
            )
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
            for batch in BatchStream(
                self.val_data, self.config.batch_size_for(stage), seed=None, epoch=0, start=0, num_workers=self.config.num_workers
            ):
                self.val_decode_skips.extend(batch.skips)
                if batch.samples:
                    loss, _ = self._batch_loss(stage, batch.samples, needs)
                    total += float(loss) * len(batch.samples)
                    count += len(batch.samples)
        finally:
            self.trainable.train()
        return total / count if count else None

    def _save_checkpoint(self) -> Path | None:
        if not self.world.writes:
            return None
        saved = {
            "train": self.state.to_dict(),
            "config": self.config.to_dict(),
            "name": self.name,
            "world_size": self.world.size,
            "scheduler": self._scheduler.state_dict() if self._scheduler is not None else None,
            "scaler": self._scaler.state_dict() if self._scaler is not None and self._scaler.is_enabled() else None,
        }
        optimizer_state = self._optimizer.state_dict() if self.state.stage is not None else None
        return ckpt.save_checkpoint(
            self.checkpoint_dir, self.state.global_step, self.trainable, optimizer_state, saved, keep=self.config.keep_checkpoints
        )

    # ------------------------------------------------------------------ the end of a fit

    def _finish(self, plan: tuple[str, ...], wall_seconds: float) -> dict[str, Any]:
        """Save the student (and adapters), write report.json and the loss curves, print the summary."""
        state = self.state
        self.trainable.eval()  # the student leaves training ready to embed (no dropout)
        student_dir = self.run_dir / STUDENT_DIR
        has_adapters = any(True for _ in self.objectives.adapters.parameters())
        adapters_file = self.run_dir / ADAPTERS_FILE if has_adapters else None
        stages = {s: stage_summary(state, s) for s in STAGES if s in plan or s in state.completed_stages}
        report = run_report(self, stages, wall_seconds, student_dir, adapters_file)
        if self.world.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.student.save_pretrained(student_dir)
            if adapters_file is not None:
                save_model(self.objectives.adapters, str(adapters_file))
            write_report(self.run_dir, report)
            plot_loss_curves(state.loss_log, self.run_dir / LOSS_CURVES_FILE, epochs=state.epochs)
            skipped = {split: info["by_reason"] for split, info in report["skipped"].items()}
            self.console.print(summary_table(stages, skipped, title=f"distillation summary: {self.name}"))
            self.console.print(f"run folder: {self.run_dir}")
        self.world.barrier()  # every rank returns once the run folder is complete
        return report


class _StepForward(nn.Module):
    """The trained forward pass of one batch: student towers, the global batch's rows under a process
    group, then the stage's objectives. A module so that DistributedDataParallel can wrap it; it
    holds the Distiller's own student and objectives (their parameters and checkpoint keys unchanged)."""

    def __init__(self, distiller: Distiller):
        super().__init__()
        self.student, self.objectives = distiller.student, distiller.objectives
        self.precision, self.device = distiller.precision, distiller.device

    def forward(self, stage: str, needs, pixels, ids, targets, rank_sizes):
        outputs: dict[str, torch.Tensor | None] = {"image": None, "text": None}
        empty = torch.zeros(0, int(self.student.embed_dim), device=self.device)
        with autocast(self.precision, self.device):
            if needs.image:
                outputs["image"] = self.student.image_tower(pixels) if pixels is not None else empty
            if needs.text:
                outputs["text"] = self.student.text_tower(ids) if ids is not None else empty
        outputs = {k: (v.float() if v is not None else None) for k, v in outputs.items()}
        if rank_sizes is not None:
            outputs = {k: (gather_rows(v, rank_sizes) if v is not None else None) for k, v in outputs.items()}
            if targets is not None:
                targets = {k: (gather_rows(v, rank_sizes) if v is not None else None) for k, v in targets.items()}
        return self.objectives.compute(stage, outputs, targets)


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
