"""What a search leaves behind: rich tables, `search.json` and `search.png`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from compress.files import write_json_atomically

QUALITY_LABELS = {"val_loss": "proxy quality (-val loss)", "zero_shot": "proxy zero-shot top-1"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def candidates_table(family: str, results: list, budget_ms: float | None, size_mb: float | None) -> Table:
    limits = f"latency <= {budget_ms:g} ms" if budget_ms is not None else "no latency limit"
    limits += f", size <= {size_mb:g} MB" if size_mb is not None else ""
    table = Table(title=f"{family} candidates ({limits})")
    for column in ("candidate", "latency ms", "source", "params", ".pte MB", "val loss", "zero-shot", "status"):
        table.add_column(column, justify="left" if column in ("candidate", "source", "status") else "right")
    for r in results:
        proxy = r.proxy
        table.add_row(
            r.name,
            _ms(r.latency_ms),
            r.latency_source + (" (cached)" if r.cache_hit else ""),
            f"{r.measurement.params / 1e6:.2f}M",
            f"{r.measurement.pte_mb:.2f}",
            "-" if proxy is None else f"{proxy.val_loss:.4f}",
            "-" if proxy is None else f"{100 * proxy.zero_shot:.1f}%",
            r.status if r.status == "ok" else f"[yellow]{r.status}",
        )
    return table


def front_table(front: list, chosen, rank_by: str) -> Table:
    table = Table(title=f"Pareto front: latency vs {QUALITY_LABELS[rank_by]} ({len(front)} pairs)")
    for column in ("", "image", "text", "image ms", "text ms", "total ms", "size MB", "params", "quality"):
        table.add_column(column, justify="left" if column in ("", "image", "text") else "right")
    for pair in front:
        table.add_row(
            "[bold green]chosen" if pair is chosen else "",
            pair.image.name,
            pair.text.name,
            _ms(pair.image.latency_ms),
            _ms(pair.text.latency_ms),
            _ms(pair.latency_ms),
            f"{pair.size_mb:.2f}",
            f"{pair.params / 1e6:.2f}M",
            f"{pair.quality:.4f}",
        )
    return table


def write_json(path: Path, report: dict[str, Any]) -> Path:
    return write_json_atomically(path, report, default=str)


def plot_search(
    path: Path, image_results: list, text_results: list, pairs: list, front: list, chosen, rank_by: str, budgets
) -> Path:
    """Three panels: image towers, text towers (latency vs quality, budget lines), and pairs with the front."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from compress.search.pareto import tower_quality

    figure = Figure(figsize=(15, 4.8))
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 3)
    quality_label = QUALITY_LABELS[rank_by]
    for axis, family, results, budget in (
        (panels[0], "image", image_results, budgets.image_latency_ms),
        (panels[1], "text", text_results, budgets.text_latency_ms),
    ):
        for r in results:
            kept = r.proxy is not None
            y = tower_quality(r, rank_by) if kept else None
            if kept:
                axis.scatter(r.latency_ms, y, color="tab:blue")
                axis.annotate(r.name, (r.latency_ms, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            else:
                axis.axvline(r.latency_ms, color="lightgrey", linewidth=0.8)
                axis.annotate(
                    f"{r.name} ({r.status})",
                    (r.latency_ms, 0),
                    xycoords=("data", "axes fraction"),
                    fontsize=6,
                    rotation=90,
                    color="grey",
                    xytext=(2, 4),
                    textcoords="offset points",
                )
        if budget is not None:
            axis.axvline(budget, color="tab:red", linestyle="--", label=f"budget {budget:g} ms")
            axis.legend(fontsize=7)
        axis.set_title(f"{family} towers")
        axis.set_xlabel("latency (ms)")
        axis.set_ylabel(quality_label)
    axis = panels[2]
    if pairs:
        axis.scatter([p.latency_ms for p in pairs], [p.quality for p in pairs], color="lightgrey", label="pairs in budget")
        axis.plot([p.latency_ms for p in front], [p.quality for p in front], "-o", color="tab:green", label="Pareto front")
        axis.scatter(
            [chosen.latency_ms], [chosen.quality], marker="*", s=220, color="tab:orange", zorder=3, label=f"chosen: {chosen.name}"
        )
        axis.legend(fontsize=7)
    axis.set_title("image + text pairs")
    axis.set_xlabel("image + text latency (ms)")
    axis.set_ylabel(quality_label)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
