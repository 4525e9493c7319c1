"""`export_bundle`: a trained student to a bundle folder, with a parity and size report.

    settings = ExportSettings(targets=("executorch", "coreml"), quantize="int8", label_sets=("demo-shape",))
    report = export_bundle(student, "runs/x/bundle", settings, calibration_samples=train[:64], parity_samples=val[:32])
    report.passed, report.data["checks"]

Targets are looked up by name in the plugin registry and driven through the `Target` protocol
(`compress.protocols`). The bundle is written into a temporary folder renamed into place at the
end, so a bundle folder is either complete or absent. Layout (docs/bundle-format.md):

    manifest.json                 schema_version 2, embed_dim, embedding_space, image/text input rules, models, labels, files
    tokenizer.model               the student's SentencePiece model, byte for byte
    tokenizer.json                the same tokenizer for Hugging Face `tokenizers` and the apps
    <tower>_encoder.<...>         each target's files (image_encoder.pte, text_encoder.int8.pte, image_encoder.mlpackage, ...)
    labels/<set>.<lang>.json      class names, templates, normalised class embeddings
    golden.json, golden/          exact model inputs (ids, pixels) and expected embeddings and top-5
    export_report.json            parity, sizes, latency, delegation, zero-shot, seconds per phase
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import compress
from compress.bundle.golden import golden_texts, write_golden
from compress.bundle.labels import label_embeddings, label_file_content, resolve_label_set
from compress.bundle.layout import FORMAT, GOLDEN, MANIFEST, REPORT, SCHEMA_VERSION, TOKENIZER_JSON, TOKENIZER_MODEL, label_file
from compress.bundle.loader import file_entries, load_bundle, validate_manifest
from compress.bundle.manifest import embedding_space, image_section, text_section
from compress.bundle.modules import ImageEncoderForExport, TextEncoderForExport
from compress.bundle.parity import measure_models, zero_shot
from compress.bundle.plugins import load_target, needs_calibration
from compress.bundle.preprocess import BundleTokenizer, image_input
from compress.bundle.runners import Runners
from compress.bundle.settings import ExportSettings
from compress.bundle.tables import parity_table, zero_shot_table
from compress.bundle.tokenizer_json import write_tokenizer_json
from compress.bundle.workers import ExportJob, JobResult, run_export_jobs
from compress.console import make_console
from compress.errors import CompressError
from compress.protocols import TowerExport


@dataclass
class ExportReport:
    """What `export_bundle` measured: `data` is export_report.json; the tables are its rich view."""

    folder: Path
    data: dict[str, Any]
    table: Table
    zero_shot_table: Table | None = None

    @property
    def passed(self) -> bool:
        return bool(self.data["passed"])


class _Phases:
    """`with phase(name):` shows the phase on the progress bar and records its seconds."""

    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.describe(name)
        started = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - started)
        self.advance()

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 2)

    def advance(self) -> None:
        self.progress.advance(self.task)


def _images_and_texts(samples) -> tuple[list[Image.Image], list[str]]:
    """Pictures and captions of `Sample`s (or bare PIL images)."""
    images, texts = [], []
    for sample in samples or ():
        if sample is None:
            continue
        if isinstance(sample, Image.Image):
            images.append(sample)
        else:
            images.append(sample.image)
            if getattr(sample, "caption", None):
                texts.append(sample.caption)
    return images, texts


def _prepare_folder(out_dir: Path, overwrite: bool) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise CompressError(f"{out_dir}: exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise CompressError(f"{out_dir}: folder is not empty (pass overwrite=True / --overwrite to replace it)")
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class _Plan:
    """What one export writes, checked before any slow work."""

    settings: ExportSettings
    targets: tuple  # Target instances, in export order
    precisions: dict[str, list[str]]
    label_sets: tuple
    calibration_images: tuple
    calibration_texts: tuple
    parity_images: tuple
    parity_texts: tuple
    source: str | None


@contextlib.contextmanager
def _plugin_errors(target, call: str):
    """A target's own exception as one CompressError naming the target and the call."""
    try:
        yield
    except CompressError:
        raise
    except Exception as exc:
        raise CompressError(f"export target {target.name!r}: {call} failed: {type(exc).__name__}: {exc}") from exc


def _plan(student, settings: ExportSettings, calibration_samples, parity_samples, source) -> _Plan:
    targets = tuple(load_target(name) for name in settings.targets)
    precisions = {}
    for target in targets:
        with _plugin_errors(target, "precisions"):
            precisions[target.name] = list(target.precisions(settings.quantize, settings.precisions.get(target.name)))
    if not (getattr(student, "has_image_tower", False) and getattr(student, "has_text_tower", False)):
        raise CompressError("a bundle needs a student with both an image tower and a text tower")
    sets = tuple(resolve_label_set(name) for name in settings.label_sets)
    calibration_images, calibration_texts = _images_and_texts(calibration_samples)
    for target in targets:
        calibrated = [p for p in precisions[target.name] if needs_calibration(target, p)]
        if calibrated and not calibration_images:
            raise CompressError(
                f"{target.name} {', '.join(calibrated)} export needs calibration samples: real training images (and captions)"
            )
    parity_images, parity_texts = _images_and_texts(list(parity_samples or ())[: settings.parity_count])
    if not parity_images or not parity_texts:
        raise CompressError("parity checks need held-out samples with images and captions (parity_samples)")
    return _Plan(
        settings,
        targets,
        precisions,
        sets,
        tuple(calibration_images),
        tuple(calibration_texts),
        tuple(parity_images),
        tuple(parity_texts),
        source,
    )


def export_bundle(
    student,
    out_dir: str | Path,
    settings: ExportSettings | None = None,
    *,
    calibration_samples: Sequence | None = None,
    parity_samples: Sequence | None = None,
    source: str | None = None,
    console: Console | None = None,
    **options,
) -> ExportReport:
    """Write a bundle of `student` to `out_dir` and measure it; returns the report (also in the bundle).

    `settings` (an `ExportSettings`; keyword `options` override its fields, e.g. `targets=`,
    `quantize=`, `coreml_variants=`). `calibration_samples`: real training `Sample`s (or PIL images)
    for calibrated int8; required when a target's precision needs them. `parity_samples`: held-out
    samples with captions for the embedding checks (the first `parity_count` are used). Zero-shot
    accuracy is measured on each label set's `test_samples`. With `strict`, a failed check raises.
    """
    console = console or make_console()
    settings = (settings or ExportSettings()).with_options(**options)
    plan = _plan(student, settings, calibration_samples, parity_samples, source)
    out_dir = Path(out_dir)
    staging = _prepare_folder(out_dir, settings.overwrite)
    student.eval()
    try:
        with torch.no_grad():
            report = _write(student, staging, plan, console)
        load_bundle(staging)  # what was written must read back
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.folder = out_dir
    console.print(report.table)
    if report.zero_shot_table is not None:
        console.print(report.zero_shot_table)
    failed = [c for c in report.data["checks"] if not c["passed"]]
    for check in failed:
        console.print(f"[red]parity check failed: {check['name']} = {check['value']:.6g} (limit {check['limit']})")
    if failed and settings.strict:
        raise CompressError(f"{out_dir}: {len(failed)} parity check(s) failed: " + ", ".join(c["name"] for c in failed))
    console.print(f"bundle: {out_dir}")
    return report


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _check_tokenizer_json(folder: Path, tokenizer: BundleTokenizer, texts: Sequence[str]) -> None:
    """tokenizer.json must encode like tokenizer.model; checked with Hugging Face `tokenizers` when installed."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return
    hf = Tokenizer.from_file(str(folder / TOKENIZER_JSON))
    for text in texts:
        if hf.encode(text, add_special_tokens=False).ids != tokenizer.pieces(text):
            raise CompressError(f"{folder / TOKENIZER_JSON}: encodes {text!r} unlike {TOKENIZER_MODEL}")


def _export_models(
    plan: _Plan, folder: Path, phase, towers: dict[str, tuple], embed_dim: int, calibration: dict[str, list[torch.Tensor]]
) -> list[dict]:
    """Every target's every precision of both towers (`towers`: tower -> (module, example)); their manifest entries.

    Each target-and-precision's seconds are its towers' export times, measured where they ran; with
    more than one worker the wall-clock time of all of them is recorded too."""
    jobs = []
    for target in plan.targets:
        for precision in plan.precisions[target.name]:
            for tower, (module, example) in towers.items():
                job = TowerExport(
                    tower=tower,
                    module=module,
                    example=example,
                    precision=precision,
                    embed_dim=embed_dim,
                    calibration=tuple(calibration[tower]) if needs_calibration(target, precision) else (),
                    scheme=plan.settings.int8_schemes.get(tower),
                )
                jobs.append(ExportJob(target.name, job))
    groups = Counter(job.group for job in jobs)  # jobs left per target and precision
    workers = min(plan.settings.workers, len(jobs))
    phase.describe(f"exporting {len(jobs)} models" + (f" in {workers} processes" if workers > 1 else ""))

    def done(job: ExportJob, result: JobResult) -> None:
        phase.add(job.group, result.seconds)
        groups[job.group] -= 1
        if not groups[job.group]:
            phase.advance()

    started = time.perf_counter()
    targets = {target.name: target for target in plan.targets}
    results = run_export_jobs(jobs, folder, targets, workers, done, _plugin_errors)
    if workers > 1:
        phase.add(f"models, wall clock ({workers} processes)", time.perf_counter() - started)
    models = []
    for job, result in zip(jobs, results):
        for entry in result.entries:
            if entry.get("target") != job.target or not entry.get("file") or not (folder / entry["file"]).exists():
                raise CompressError(f"export target {job.target!r} returned a model entry for a file it did not write: {entry!r}")
        models.extend(result.entries)
    return models


def _write(student, folder: Path, plan: _Plan, console: Console) -> ExportReport:
    settings = plan.settings
    describe = student.describe()
    manifest_image, manifest_text = image_section(describe["image"]), text_section(describe["text"])
    embed_dim = int(student.embed_dim)
    student.tokenizer.save(folder / TOKENIZER_MODEL)
    tokenizer = BundleTokenizer(folder / TOKENIZER_MODEL, manifest_text)
    write_tokenizer_json(folder / TOKENIZER_MODEL, folder / TOKENIZER_JSON)
    _check_tokenizer_json(folder, tokenizer, [t for _, t in golden_texts(tokenizer, student.languages)] + list(plan.parity_texts))
    image_model = ImageEncoderForExport(student.image_tower, manifest_image["mean"], manifest_image["std"]).eval()
    text_model = TextEncoderForExport(student.text_tower).eval()
    inputs = {
        "image": [torch.from_numpy(image_input(im, manifest_image)) for im in plan.parity_images],
        "text": [torch.from_numpy(tokenizer(t)) for t in plan.parity_texts],
    }
    calibration = {
        "image": [torch.from_numpy(image_input(im, manifest_image)) for im in plan.calibration_images],
        "text": [torch.from_numpy(tokenizer(t)) for t in plan.calibration_texts],
    }
    eager = {
        "image": torch.cat([image_model(x) for x in inputs["image"]]),
        "text": torch.cat([text_model(x) for x in inputs["text"]]),
    }
    steps = sum(len(p) for p in plan.precisions.values()) + len(plan.label_sets) + 2
    with _progress(console) as progress:
        phase = _Phases(progress, progress.add_task("exporting bundle", total=steps))
        towers = {"image": (image_model, inputs["image"][0]), "text": (text_model, inputs["text"][0])}
        models = _export_models(plan, folder, phase, towers, embed_dim, calibration)
        runners = Runners(folder, models, plan.targets)
        label_entries, label_files = [], {}
        for label_set in plan.label_sets:
            with phase(f"label embeddings: {label_set.name}"):
                for lang in label_set.languages:
                    if lang not in student.languages:
                        continue
                    embeddings = label_embeddings(student, label_set, lang)
                    rel = label_file(label_set.name, lang)
                    content = label_file_content(label_set, lang, embeddings, "fp32 text encoder")
                    _write_json(folder / rel, content)
                    label_files[f"{label_set.name}.{lang}"] = content
                    label_entries.append({"set": label_set.name, "lang": lang, "file": rel, "classes": int(embeddings.shape[0])})
        with phase("golden inputs and outputs"):
            eager_runners = {"image": image_model, "text": text_model}
            golden = write_golden(
                folder,
                student,
                tokenizer,
                manifest_image,
                plan.parity_images[0],
                eager_runners,
                runners,
                label_files,
                settings.scale,
            )
        with phase("parity, size and latency"):
            rows, checks = measure_models(folder, models, runners, inputs, eager, settings.thresholds)
            zero_rows, zero_checks = zero_shot(
                runners, plan.label_sets, label_files, manifest_image, settings.zero_shot_count, settings.thresholds
            )
    data = {
        "thresholds": dict(settings.thresholds),
        "samples": {"images": len(plan.parity_images), "texts": len(plan.parity_texts)},
        "targets": list(settings.targets),
        "quantize": settings.quantize,
        "models": rows,
        "zero_shot": zero_rows,
        "checks": checks + zero_checks,
        "passed": all(c["passed"] for c in checks + zero_checks),
        "seconds": phase.seconds,
        "golden_texts": len(golden["texts"]),
    }
    _write_json(folder / REPORT, data)
    schemes = {m["tower"]: m["delegation"]["scheme"] for m in models if "scheme" in m.get("delegation", {})}
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created_by": f"compress {compress.__version__}",
        "embed_dim": embed_dim,
        "languages": list(student.languages),
        "logit_scale": settings.scale,
        "normalized_embeddings": True,
        "image": manifest_image,
        "text": manifest_text,
        "models": models,
        "labels": label_entries,
        "golden": GOLDEN,
        "report": REPORT,
        "model_info": {
            "family": describe.get("family"),
            "config": {**student.config, "tokenizer": TOKENIZER_MODEL},
            "source": plan.source,
            "parameters": {
                "image": sum(p.numel() for p in student.image_tower.parameters()),
                "text": sum(p.numel() for p in student.text_tower.parameters()),
            },
            "int8_schemes": schemes or None,
            "exported_on": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
        },
        "files": file_entries(folder),
    }
    manifest["embedding_space"] = embedding_space(manifest)
    validate_manifest(manifest)
    _write_json(folder / MANIFEST, manifest)
    return ExportReport(folder=folder, data=data, table=parity_table(data), zero_shot_table=zero_shot_table(data))
