"""Evaluating encoders on classification and retrieval sets, several models in one pass over the images.

Each image is decoded once per dataset and fed to every model, so comparing a teacher with its
students costs one read of the data. Unreadable images are skipped, counted and listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from compress.errors import CompressError
from compress.eval import metrics as M
from compress.eval.datasets import ClassificationSet, ImageBatches, SkippedImage, open_classification
from compress.eval.retrieval import RetrievalSet, open_retrieval
from compress.eval.zeroshot import class_embeddings, image_embeddings
from compress.protocols import check_encoder

CLASSIFICATION = "classification"
RETRIEVAL = "retrieval"
TEXT_BATCH = 256
CLASS_CHUNK = 32


@dataclass
class DatasetInfo:
    """What was evaluated: sizes, where names came from, and the images that could not be read."""

    name: str
    kind: str
    source: str
    num_images: int
    num_classes: int | None = None
    primary_metric: str | None = None
    name_sources: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedImage] = field(default_factory=list)
    ignored_files: int = 0

    def to_dict(self, max_examples: int = 20) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "num_images": self.num_images,
            "num_classes": self.num_classes,
            "primary_metric": self.primary_metric,
            "class_names_from": self.name_sources,
            "skipped_images": len(self.skipped),
            "skipped_examples": [{"image": s.source, "reason": s.reason} for s in self.skipped[:max_examples]],
            "ignored_files": self.ignored_files,
        }


@dataclass
class EvalResults:
    """Scores as results[model][dataset][lang][metric], with dataset details and notes."""

    models: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, model: str, dataset: str, lang: str, values: Mapping[str, float]) -> None:
        self.results.setdefault(model, {}).setdefault(dataset, {})[lang] = dict(values)

    def value(self, model: str, dataset: str, lang: str, metric: str) -> float | None:
        return self.results.get(model, {}).get(dataset, {}).get(lang, {}).get(metric)

    def primary(self, model: str, dataset: str, lang: str) -> float | None:
        info = self.datasets[dataset]
        metric = info.primary_metric or "mean_recall"
        return self.value(model, dataset, lang, metric)

    def rows(self) -> list[dict[str, Any]]:
        """One record per (model, dataset, lang, metric)."""
        return [
            {"model": model, "dataset": dataset, "lang": lang, "metric": metric, "value": value}
            for model, by_dataset in self.results.items()
            for dataset, by_lang in by_dataset.items()
            for lang, by_metric in by_lang.items()
            for metric, value in by_metric.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "languages": self.languages,
            "datasets": {name: info.to_dict() for name, info in self.datasets.items()},
            "results": self.results,
            "rows": self.rows(),
            "notes": self.notes,
        }


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


def _serves(encoder, lang: str) -> bool:
    languages = getattr(encoder, "languages", None)
    return languages is None or lang in languages


def _check_towers(name: str, encoder) -> None:
    for tower in ("image", "text"):
        if not getattr(encoder, f"has_{tower}_tower", True):
            raise CompressError(f"model {name}: has no {tower} tower; zero-shot evaluation needs both")


def _open(dataset) -> ClassificationSet | RetrievalSet:
    if isinstance(dataset, (ClassificationSet, RetrievalSet)):
        return dataset
    path = Path(dataset)
    if path.suffix == ".jsonl":
        return open_retrieval(path)
    return open_classification(path)


def evaluate_models(
    models: Mapping[str, Any],
    datasets: Sequence[ClassificationSet | RetrievalSet | str | Path],
    langs: Sequence[str] = ("en", "zh"),
    *,
    batch_size: int = 64,
    limit: int | None = None,
    workers: int | None = None,
) -> EvalResults:
    """Every model on every dataset in every requested language.

    `models` maps a report name to an encoder; `datasets` holds ClassificationSets, RetrievalSets,
    or paths (a dataset folder, or a .jsonl retrieval manifest). `limit` caps the images of each
    classification set (taken round-robin over classes) for quick checks.
    """
    if not models:
        raise CompressError("no models to evaluate")
    models = {name: check_encoder(encoder, f"evaluate model {name!r}") for name, encoder in models.items()}
    for name, encoder in models.items():
        _check_towers(name, encoder)
    results = EvalResults(models=list(models), languages=list(langs))
    opened = [_open(d) for d in datasets]
    names = [d.name for d in opened]
    if len(set(names)) != len(names):
        raise CompressError(f"two datasets share a name: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    with _progress() as progress, _eval_mode(models.values()):
        for dataset in opened:
            if isinstance(dataset, ClassificationSet):
                _run_classification(models, dataset.subset(limit), langs, results, progress, batch_size, workers)
            else:
                _run_retrieval(models, dataset, langs, results, progress, batch_size, workers)
    return results


@contextmanager
def _eval_mode(encoders):
    """Modules in eval mode (no dropout, frozen norm statistics) while evaluating, then as they were."""
    modules = [e for e in encoders if isinstance(e, torch.nn.Module)]
    was_training = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, training in zip(modules, was_training):
            module.train(training)


def _encode_all_images(models, items, progress, description, batch_size, workers):
    """Image embeddings of every readable item for every model: ({model: [n, D]}, kept indices, skipped)."""
    batches = ImageBatches(items, batch_size=batch_size, workers=workers)
    task = progress.add_task(description, total=len(items))
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in models}
    kept: list[int] = []
    done = 0
    for indices, images in batches:
        if images:
            for name, encoder in models.items():
                chunks[name].append(image_embeddings(encoder, images, batch_size=len(images)).cpu())
            kept += indices
        step = min(batch_size, len(items) - done)  # the batch's size, skipped images included
        done += step
        progress.advance(task, step)
    progress.remove_task(task)
    if not kept:
        first = batches.skipped[0] if batches.skipped else None
        raise CompressError(
            f"{description}: none of the {len(items)} images could be read" + (f"; first: {first.reason}" if first else "")
        )
    return {name: torch.cat(c) for name, c in chunks.items()}, kept, batches.skipped


def _class_embeddings(encoder, classnames, templates, lang, progress, description) -> torch.Tensor:
    task = progress.add_task(description, total=len(classnames))
    rows = []
    for start in range(0, len(classnames), CLASS_CHUNK):
        chunk = classnames[start : start + CLASS_CHUNK]
        rows.append(class_embeddings(encoder, chunk, templates, lang).cpu())
        progress.advance(task, len(chunk))
    progress.remove_task(task)
    return torch.cat(rows)


def _run_classification(models, dataset: ClassificationSet, langs, results, progress, batch_size, workers):
    info = DatasetInfo(
        name=dataset.name,
        kind=CLASSIFICATION,
        source=dataset.source,
        num_images=len(dataset),
        num_classes=dataset.num_classes,
        primary_metric=dataset.primary_metric,
        name_sources=dict(dataset.name_sources),
        ignored_files=dataset.ignored_files,
    )
    results.datasets[dataset.name] = info
    if dataset.ignored_files:
        results.notes.append(f"{dataset.name}: {dataset.ignored_files} non-image files ignored")
    plan: dict[str, list[str]] = {}
    for lang in langs:
        if lang not in dataset.classnames:
            results.notes.append(f"{dataset.name}: no {lang} class names; {lang} not evaluated")
            continue
        for name, encoder in models.items():
            if _serves(encoder, lang):
                plan.setdefault(name, []).append(lang)
            else:
                results.notes.append(f"{name}: does not serve {lang}; {dataset.name} {lang} not evaluated")
    if not plan:
        return
    text = {
        (name, lang): _class_embeddings(
            models[name],
            dataset.classnames[lang],
            dataset.templates[lang],
            lang,
            progress,
            f"{name} {dataset.name} {lang} class names",
        )
        for name, name_langs in plan.items()
        for lang in name_langs
    }
    active = {name: models[name] for name in plan}
    embeddings, kept, skipped = _encode_all_images(active, dataset.items, progress, f"{dataset.name} images", batch_size, workers)
    info.skipped = skipped
    if skipped:
        results.notes.append(f"{dataset.name}: {len(skipped)} of {len(dataset)} images unreadable and skipped")
    labels = torch.tensor([dataset.labels[i] for i in kept], dtype=torch.long)
    for (name, lang), class_emb in text.items():
        logits = embeddings[name] @ class_emb.T
        try:
            values = M.classification_metrics(logits, labels, dataset.primary_metric)
        except M.UndefinedMetricError as exc:
            values = M.classification_metrics(logits, labels, M.TOP1)
            results.notes.append(f"{dataset.name}: {dataset.primary_metric} undefined for {name} {lang} ({exc})")
        results.record(name, dataset.name, lang, values)


def _encode_texts(encoder, texts: list[str], lang: str) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [encoder.encode_texts(texts[i : i + TEXT_BATCH], lang).float().cpu() for i in range(0, len(texts), TEXT_BATCH)]
        )


def _run_retrieval(models, dataset: RetrievalSet, langs, results, progress, batch_size, workers):
    info = DatasetInfo(name=dataset.name, kind=RETRIEVAL, source=dataset.source, num_images=len(dataset))
    results.datasets[dataset.name] = info
    if dataset.rejected_lines:
        counts = ", ".join(f"{n} {reason}" for reason, n in dataset.rejected_lines.most_common())
        results.notes.append(f"{dataset.name}: manifest lines skipped: {counts}")
    wanted = [lang for lang in langs if lang in dataset.captions]
    for lang in langs:
        if lang not in dataset.captions:
            results.notes.append(f"{dataset.name}: no {lang} captions; {lang} not evaluated")
    if not wanted:
        return
    embeddings, kept, skipped = _encode_all_images(
        models, dataset.images, progress, f"{dataset.name} images", batch_size, workers
    )
    info.skipped = skipped
    if skipped:
        results.notes.append(
            f"{dataset.name}: {len(skipped)} of {len(dataset)} images unreadable; they and their captions skipped"
        )
    row_of_image = {image_index: row for row, image_index in enumerate(kept)}
    for lang in wanted:
        pairs = [
            (caption, row_of_image[owner])
            for caption, owner in zip(dataset.captions[lang], dataset.image_of_caption[lang])
            if owner in row_of_image
        ]
        if not pairs:
            results.notes.append(f"{dataset.name}: no readable {lang} pairs")
            continue
        rows = sorted({row for _, row in pairs})
        local = {row: i for i, row in enumerate(rows)}
        captions = [caption for caption, _ in pairs]
        owners = [local[row] for _, row in pairs]
        for name, encoder in models.items():
            if not _serves(encoder, lang):
                results.notes.append(f"{name}: does not serve {lang}; {dataset.name} {lang} not evaluated")
                continue
            text_emb = _encode_texts(encoder, captions, lang)
            similarity = text_emb @ embeddings[name][rows].T
            results.record(name, dataset.name, lang, M.retrieval_recalls(similarity, owners))


def evaluate_zero_shot(
    encoder,
    dataset: ClassificationSet | str | Path,
    langs: Sequence[str] = ("en", "zh"),
    *,
    batch_size: int = 64,
    limit: int | None = None,
) -> dict[str, Any]:
    """One encoder on one classification set.

    Returns {"dataset", "primary_metric", "num_images", "skipped_images", "metrics": {lang:
    {metric: value}}, "notes"}; metrics are top1, top5, mean_per_class and the primary one.
    """
    results = evaluate_models({"model": encoder}, [dataset], langs, batch_size=batch_size, limit=limit)
    ((name, info),) = results.datasets.items()
    return {
        "dataset": name,
        "primary_metric": info.primary_metric,
        "num_images": info.num_images,
        "skipped_images": len(info.skipped),
        "metrics": results.results.get("model", {}).get(name, {}),
        "notes": results.notes,
    }


def evaluate_retrieval(
    encoder, dataset: RetrievalSet | str | Path, langs: Sequence[str] = ("en", "zh"), *, batch_size: int = 64
) -> dict[str, Any]:
    """One encoder on one retrieval manifest: {"dataset", "num_images", "skipped_images", "metrics", "notes"}."""
    results = evaluate_models({"model": encoder}, [dataset], langs, batch_size=batch_size)
    ((name, info),) = results.datasets.items()
    return {
        "dataset": name,
        "num_images": info.num_images,
        "skipped_images": len(info.skipped),
        "metrics": results.results.get("model", {}).get(name, {}),
        "notes": results.notes,
    }
