"""Evaluation reports: a rich table, `eval.json`, and a bar chart per dataset and language."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from compress.console import make_console
from compress.eval import metrics as M
from compress.eval.runner import CLASSIFICATION, RETRIEVAL, EvalResults
from compress.files import write_json_atomically

RETRIEVAL_COLUMNS = [M.recall_name(d, k) for d in ("i2t", "t2i") for k in M.RECALL_KS] + ["mean_recall"]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _table(title: str, left: list[str], right: list[str]) -> Table:
    table = Table(title=title)
    for column in left:
        table.add_column(column, overflow="fold")
    for column in right:
        table.add_column(column, justify="right", no_wrap=True)
    return table


def classification_table(results: EvalResults) -> Table | None:
    datasets = [n for n, info in results.datasets.items() if info.kind == CLASSIFICATION]
    if not datasets:
        return None
    table = _table(
        "zero-shot classification (%)",
        ["dataset", "lang", "model"],
        ["primary", "top-1", "top-5", "mean/class", "images", "skipped"],
    )
    for dataset in datasets:
        info = results.datasets[dataset]
        for lang in results.languages:
            for model in results.models:
                scores = results.results.get(model, {}).get(dataset, {}).get(lang)
                if scores is None:
                    continue
                table.add_row(
                    dataset,
                    lang,
                    model,
                    f"{_percent(scores.get(info.primary_metric))} {info.primary_metric}",
                    _percent(scores.get(M.TOP1)),
                    _percent(scores.get(M.TOP5)),
                    _percent(scores.get(M.MEAN_PER_CLASS)),
                    str(info.num_images - len(info.skipped)),
                    str(len(info.skipped)),
                )
    return table


def retrieval_table(results: EvalResults) -> Table | None:
    datasets = [n for n, info in results.datasets.items() if info.kind == RETRIEVAL]
    if not datasets:
        return None
    table = _table("image-text retrieval recall (%)", ["dataset", "lang", "model"], RETRIEVAL_COLUMNS)
    for dataset in datasets:
        for lang in results.languages:
            for model in results.models:
                scores = results.results.get(model, {}).get(dataset, {}).get(lang)
                if scores is not None:
                    table.add_row(dataset, lang, model, *(_percent(scores.get(c)) for c in RETRIEVAL_COLUMNS))
    return table


def print_eval_tables(results: EvalResults, console: Console | None = None) -> None:
    console = console or make_console()
    for table in (classification_table(results), retrieval_table(results)):
        if table is not None:
            console.print(table)
    for note in results.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "dataset"


def plot_comparison(results: EvalResults, dataset: str, lang: str, path: Path) -> Path:
    """Grouped bars: one group per metric, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = results.datasets[dataset]
    if info.kind == CLASSIFICATION:
        metrics = [M.TOP1, M.TOP5, M.MEAN_PER_CLASS]
        if info.primary_metric not in metrics:
            metrics.append(info.primary_metric)
    else:
        metrics = RETRIEVAL_COLUMNS
    models = [m for m in results.models if results.results.get(m, {}).get(dataset, {}).get(lang)]
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 1.1 * len(metrics) * max(1, len(models)) ** 0.5 + 2)), 4.0))
    for i, model in enumerate(models):
        scores = results.results[model][dataset][lang]
        xs = [m + (i - (len(models) - 1) / 2) * width for m in range(len(metrics))]
        heights = [100 * scores.get(metric, 0.0) for metric in metrics]
        bars = ax.bar(xs, heights, width=width, label=model)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, fontsize=8)
    ax.set_xlim(-0.6, len(metrics) - 0.4)
    ax.set_ylim(0, 108)
    ax.set_ylabel("%")
    ax.set_title(f"{dataset} ({lang})")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(3, len(models)), frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_eval_report(
    results: EvalResults, out_dir: str | Path, console: Console | None = None, show: bool = True
) -> dict[str, object]:
    """Write `eval.json` plus `<dataset>.<lang>.png` charts (and print the tables unless `show` is
    False); returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if show:
        print_eval_tables(results, console)
    json_path = out / "eval.json"
    write_json_atomically(json_path, results.to_dict())
    charts = []
    for dataset in results.datasets:
        for lang in results.languages:
            if any(results.results.get(m, {}).get(dataset, {}).get(lang) for m in results.models):
                charts.append(plot_comparison(results, dataset, lang, out / f"{_safe(dataset)}.{_safe(lang)}.png"))
    return {"json": json_path, "charts": charts}
