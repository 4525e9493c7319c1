"""The rich tables an export prints: size and parity per model, zero-shot top-1 per label set."""

from __future__ import annotations

from rich.table import Table


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def parity_table(data: dict) -> Table:
    notes = sorted({row["note"] for row in data["models"] if row.get("note")})
    table = Table(title="bundle: size and parity", caption="; ".join(notes) or None)
    for column in ("model", "MB", "smaller", "ms", "deleg.", "max err", "cosine"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in data["models"]:
        cosine = row.get("cosine_vs_fp32", row.get("cosine_vs_eager"))
        table.add_row(
            f"{row['target']} {row['tower']} {row['precision']}",
            f"{row['bytes'] / 1e6:.2f}",
            _fmt(row.get("size_ratio"), "{:.2f}x"),
            _fmt(row.get("latency_ms"), "{:.2f}"),
            _fmt(row.get("delegated_fraction"), "{:.0%}"),
            _fmt(row.get("max_abs_error_vs_eager"), "{:.0e}"),
            _fmt(cosine, "{:.4f}"),
        )
    return table


def zero_shot_table(data: dict) -> Table | None:
    if not data["zero_shot"]:
        return None
    table = Table(title="bundle: zero-shot top-1 on the label sets' test pictures")
    for column in ("label set", "lang", "model", "images", "top-1", "drop (points)"):
        table.add_column(column, justify="left" if column in ("label set", "lang", "model") else "right")
    for row in data["zero_shot"]:
        for precision, top1 in row["top1"].items():
            table.add_row(
                row["set"],
                row["lang"],
                f"{row['target']} {precision}",
                str(row["count"]),
                f"{top1:.1%}",
                _fmt(row["drop_points"].get(precision), "{:+.1f}"),
            )
    return table
