"""What the export measures: every runnable model against eager fp32 on held-out inputs, sizes,
latency, and zero-shot top-1 of each precision on the label sets' test pictures."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from compress.bundle.labels import LabelSet
from compress.bundle.runners import Runners, run_rows
from compress.quant.measure import embedding_cosine, latency_ms


def _check(name: str, value: float, limit: float, at_most: bool) -> dict:
    return {"name": name, "value": float(value), "limit": limit, "passed": bool(value <= limit if at_most else value >= limit)}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure_models(
    folder: Path,
    models: Sequence[dict],
    runners: Runners,
    inputs: dict[str, list[torch.Tensor]],
    eager: dict[str, torch.Tensor],
    thresholds,
) -> tuple[list[dict], list[dict]]:
    """(one row per model, the checks): bytes and size ratio to the target's first precision;
    for models that run here, latency, error and cosine to eager, and cosine to the target's fp32."""
    outputs = {}
    for entry in models:
        run = runners.get(entry["target"], entry["tower"], entry["precision"])
        if run is not None:
            outputs[(entry["target"], entry["tower"], entry["precision"])] = run_rows(run, inputs[entry["tower"]])
    rows, checks, base_bytes = [], [], {}
    for entry in models:
        target, tower, precision = entry["target"], entry["tower"], entry["precision"]
        name = f"{target} {tower} {precision}"
        size = _size(folder / entry["file"])
        if runners.first_precision[(target, tower)] == precision:
            base_bytes[(target, tower)] = size
        row = {"target": target, "tower": tower, "precision": precision, "file": entry["file"], "bytes": size}
        if "delegation" in entry and "fraction" in entry["delegation"]:
            row["delegated_fraction"] = entry["delegation"]["fraction"]
        out = outputs.get((target, tower, precision))
        if out is None:
            row["note"] = f"{target} models cannot run on this machine ({platform.system()}); not measured"
        else:
            row["latency_ms"] = latency_ms(runners.get(target, tower, precision), inputs[tower][0], warmup=2, iterations=10)
            row["max_abs_error_vs_eager"] = float((out - eager[tower]).abs().max())
            row["cosine_vs_eager"] = embedding_cosine(eager[tower], out)
            if precision == "fp32":
                checks.append(
                    _check(
                        f"{name} max abs error vs eager",
                        row["max_abs_error_vs_eager"],
                        thresholds["fp32_max_abs_error"],
                        at_most=True,
                    )
                )
            else:
                reference = outputs.get((target, tower, "fp32"), eager[tower])
                row["cosine_vs_fp32"] = embedding_cosine(reference, out)
                checks.append(
                    _check(f"{name} mean cosine vs fp32", row["cosine_vs_fp32"], thresholds["min_cosine_vs_fp32"], at_most=False)
                )
        rows.append(row)
    for row in rows:
        base = base_bytes.get((row["target"], row["tower"]))
        row["size_ratio"] = round(base / row["bytes"], 3) if base else None
    return rows, checks


def zero_shot(
    runners: Runners, sets: Sequence[LabelSet], label_files: dict[str, dict], manifest_image: dict, count: int, thresholds
) -> tuple[list[dict], list[dict]]:
    """(rows, checks): top-1 of every runnable image model on each set's test pictures, per language;
    each precision's drop in points against the target's first precision."""
    from compress.bundle.preprocess import image_input

    rows, checks = [], []
    for label_set in sets:
        if label_set.test_samples is None or count <= 0:
            continue
        images, labels = label_set.test_samples(count)
        labels = torch.tensor(labels)
        inputs = [torch.from_numpy(image_input(im, manifest_image)) for im in images]
        for target in runners.order:
            precisions = runners.precisions(target, "image")
            if not precisions:
                continue
            embeddings = {p: run_rows(runners.get(target, "image", p), inputs) for p in precisions}
            base = runners.first_precision[(target, "image")]
            for labels_file in label_files.values():
                if labels_file["set"] != label_set.name:
                    continue
                classes = torch.tensor(labels_file["embeddings"])
                top1 = {p: (e @ classes.T).argmax(dim=1).eq(labels).float().mean().item() for p, e in embeddings.items()}
                row = {
                    "set": label_set.name,
                    "lang": labels_file["lang"],
                    "target": target,
                    "count": len(images),
                    "top1": top1,
                    "drop_points": {p: 100.0 * (top1[base] - v) for p, v in top1.items() if p != base and base in top1},
                }
                for precision, drop in row["drop_points"].items():
                    checks.append(
                        _check(
                            f"zero-shot top-1 drop {label_set.name} ({labels_file['lang']}) {target} {precision}, points",
                            drop,
                            thresholds["max_top1_drop_points"],
                            at_most=True,
                        )
                    )
                rows.append(row)
    return rows, checks
