"""What a training run leaves behind for people: a rich summary table, `report.json` and `loss_curves.png`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from compress.files import write_atomically, write_json_atomically

STAGE_TITLES = {"distill": "stage 1: feature distillation", "align": "stage 2: alignment"}


def _format_skipped(skipped: Mapping[str, Mapping[str, int]]) -> str:
    parts = []
    for split, reasons in skipped.items():
        found = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()) if count)
        parts.append(f"{split}: {found or 'none'}")
    return "skipped samples: " + ("; ".join(parts) or "none")


def summary_table(stages: Mapping[str, Mapping[str, Any]], skipped: Mapping[str, Mapping[str, int]],
                  title: str = "distillation summary") -> Table:
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


def write_report(run_dir: str | Path, report: dict[str, Any]) -> Path:
    return write_json_atomically(Path(run_dir) / "report.json", report)


def plot_loss_curves(loss_log: Sequence[Mapping[str, Any]], path: str | Path,
                     epochs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> Path:
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
                axes.plot(epoch["last_global_step"], epoch["mean_loss"], "o", color="tab:orange",
                          label="epoch mean" if epoch["epoch"] == 0 else None)
            if epoch.get("val_loss") is not None:
                axes.plot(epoch["last_global_step"], epoch["val_loss"], "s", color="tab:green",
                          label="validation" if epoch["epoch"] == 0 else None)
        axes.set_title(STAGE_TITLES.get(stage, stage))
        axes.set_xlabel("global step")
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
        if rows:
            axes.legend(loc="upper right")
    figure.tight_layout()
    return write_atomically(path, lambda temp: figure.savefig(temp, format="png"))
