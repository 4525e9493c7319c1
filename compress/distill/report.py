"""What a training run leaves behind for people: a rich summary table, `report.json` and `loss_curves.png`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from compress.data.loader import SampleBatch, SkipStats
from compress.files import write_atomically, write_json_atomically

# The run folder's layout (its one definition; readers such as `compress export` import these).
REPORT_FILE = "report.json"
LOSS_CURVES_FILE = "loss_curves.png"
STUDENT_DIR = "student"  # the trained student's `save_pretrained` folder
ADAPTERS_FILE = "adapters.safetensors"
CHECKPOINT_DIR = "checkpoints"

PROGRESS_REFRESH_PER_SECOND = 2
STAGE_TITLES = {"distill": "stage 1: feature distillation", "align": "stage 2: alignment"}


def _format_skipped(skipped: Mapping[str, Mapping[str, int]]) -> str:
    parts = []
    for split, reasons in skipped.items():
        found = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()) if count)
        parts.append(f"{split}: {found or 'none'}")
    return "skipped samples: " + ("; ".join(parts) or "none")


def summary_table(
    stages: Mapping[str, Mapping[str, Any]], skipped: Mapping[str, Mapping[str, int]], title: str = "distillation summary"
) -> Table:
    """One row per stage (steps, final loss, last epoch's mean and validation loss, throughput, time);
    the skipped samples of each dataset, by reason, in the caption."""
    table = Table(title=title, caption=_format_skipped(skipped))
    for column in ("stage", "steps", "final loss", "epoch loss", "val loss", "samples/s", "time"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, info in stages.items():
        last_epoch = (info.get("epochs") or [{}])[-1]
        table.add_row(
            stage,
            str(info["steps"]),
            _number(info.get("final_loss")),
            _number(last_epoch.get("mean_loss")),
            _number(last_epoch.get("val_loss")),
            f"{info.get('samples_per_s', 0.0):.1f}",
            f"{info.get('seconds', 0.0):.1f} s",
        )
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def progress_bar(console, enabled: bool) -> Progress:
    """The training progress bar: steps of the stage, epoch, loss, throughput and time."""
    # Redrawing twice a second is enough for a bar whose finest field is whole seconds; rich's
    # default of ten redraws holds the GIL often enough to slow training by a few percent.
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} samples/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        refresh_per_second=PROGRESS_REFRESH_PER_SECOND,
    )


def stage_summary(state, stage: str) -> dict[str, Any]:
    """One stage of a run: steps, completion, final loss, epochs, samples and throughput."""
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


def skipped_samples(data, decode_skips, val_data=None, val_decode_skips=()) -> dict[str, dict[str, Any]]:
    """Skipped samples by reason, per dataset: found when opened plus failed decodes, each sample once."""
    train = SkipStats.of(data)
    train.add_batch(SampleBatch(skips=[tuple(entry) for entry in decode_skips]))
    out = {"train": train.to_dict()}
    if val_data is not None:
        val = SkipStats.of(val_data)
        val.add_batch(SampleBatch(skips=list(val_decode_skips)))
        out["val"] = val.to_dict()
    return out


def describe_adapter(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, nn.Linear):
        return {"kind": "linear", "in": module.in_features, "out": module.out_features}
    return {"kind": "identity"}


def run_report(
    distiller, stages: Mapping[str, Mapping[str, Any]], wall_seconds: float, student_dir: Path, adapters_file: Path | None
) -> dict[str, Any]:
    """`report.json` of a finished fit: settings, teacher, student, adapters, per-stage results, logs, skips."""
    d, state = distiller, distiller.state
    return {
        "name": d.name,
        "run_dir": str(d.run_dir),
        "config": d.config.to_dict(),
        "teacher": {"name": d.teacher.name, "fingerprint": d.teacher.fingerprint, "widths": d.objectives.widths},
        "student": {
            "config": getattr(d.student, "config", None),
            "embed_dim": int(d.student.embed_dim),
            "folder": str(student_dir),
        },
        "adapters": {tower: describe_adapter(m) for tower, m in d.objectives.adapters.items()},
        "adapters_file": str(adapters_file) if adapters_file else None,
        "logit_scale": d.objectives.logit_scale(),
        "device": str(d.device),
        "precision": d.precision,
        "world_size": d.world.size,
        "global_step": state.global_step,
        "completed_stages": list(state.completed_stages),
        "stages": dict(stages),
        "epoch_losses": {s: [e["mean_loss"] for e in info["epochs"]] for s, info in stages.items()},
        "loss_log": state.loss_log,
        "skipped": skipped_samples(d.data, state.decode_skips, d.val_data, d.val_decode_skips),
        "timings": {"fit_wall_seconds": wall_seconds, "train_seconds": {s: state.seconds.get(s, 0.0) for s in stages}},
        "resumed_from": list(state.resumed_from),
    }


def write_report(run_dir: str | Path, report: dict[str, Any]) -> Path:
    return write_json_atomically(Path(run_dir) / REPORT_FILE, report)


def plot_loss_curves(
    loss_log: Sequence[Mapping[str, Any]], path: str | Path, epochs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> Path:
    """One panel per stage: per-step loss against the global step, with epoch means (and validation losses) marked."""
    # The object-oriented API draws on an Agg canvas without touching pyplot's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    stages = list(dict.fromkeys(entry["stage"] for entry in loss_log)) or ["(no steps)"]
    figure = Figure(figsize=(6.0 * len(stages), 4.0), dpi=100)
    FigureCanvasAgg(figure)
    for index, stage in enumerate(stages, start=1):
        axes = figure.add_subplot(1, len(stages), index)
        rows = [e for e in loss_log if e["stage"] == stage]
        axes.plot([e["global_step"] for e in rows], [e["loss"] for e in rows], linewidth=0.8, label="step loss")
        for epoch in (epochs or {}).get(stage, []):
            if epoch.get("mean_loss") is not None:
                axes.plot(
                    epoch["last_global_step"],
                    epoch["mean_loss"],
                    "o",
                    color="tab:orange",
                    label="epoch mean" if epoch["epoch"] == 0 else None,
                )
            if epoch.get("val_loss") is not None:
                axes.plot(
                    epoch["last_global_step"],
                    epoch["val_loss"],
                    "s",
                    color="tab:green",
                    label="validation" if epoch["epoch"] == 0 else None,
                )
        axes.set_title(STAGE_TITLES.get(stage, stage))
        axes.set_xlabel("global step")
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
        if rows:
            axes.legend(loc="upper right")
    figure.tight_layout()
    return write_atomically(path, lambda temp: figure.savefig(temp, format="png"))
