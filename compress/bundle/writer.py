"""`export_bundle`: a trained student to a bundle folder, with a parity and size report.

    report = export_bundle(student, "runs/x/bundle", targets=("executorch", "coreml"), quantize="int8",
                           label_sets=("demo-shape", "demo-color"), calibration_samples=train_samples[:64])
    report.passed, report.data["checks"]

Layout written (into a temporary folder renamed into place at the end, so a bundle folder is
either complete or absent):

    manifest.json                 schema_version, embed_dim, image/text input rules, models, labels, files (sha256)
    tokenizer.model               the student's SentencePiece model, byte for byte
    image_encoder.pte             ExecuTorch + XNNPACK, fp32 (and image_encoder.int8.pte)
    text_encoder.pte              (and text_encoder.int8.pte)
    image_encoder.mlpackage       Core ML fp16 (and .int8 / .palette6 / .palette4 variants)
    text_encoder.mlpackage
    labels/<set>.<lang>.json      class names, templates, normalised class embeddings
    golden.json                   texts with their token ids and embeddings, a picture with its embedding
    golden/image_0.png
    export_report.json            parity (fp32 vs eager, int8 vs fp32, zero-shot), sizes, latency, delegation
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import compress
from compress.bundle.labels import LabelSet, label_embeddings, label_file_content, resolve_label_set
from compress.bundle.loader import MANIFEST, SCHEMA_VERSION, file_entries, load_bundle, validate_manifest
from compress.bundle.modules import ImageEncoderForExport, TextEncoderForExport
from compress.bundle.preprocess import BundleTokenizer, image_input
from compress.console import make_console
from compress.errors import CompressError
from compress.quant.measure import embedding_cosine, latency_ms

TARGETS = ("executorch", "coreml")
QUANTIZE = ("none", "int8")
COREML_VARIANTS = {"fp16": "fp16", "int8-weights": "int8", "palette6": "palette6", "palette4": "palette4"}
COREML_SUFFIX = {"fp16": "", "int8-weights": ".int8", "palette6": ".palette6", "palette4": ".palette4"}
DEFAULT_LOGIT_SCALE = 100.0  # CLIP's trained value, used when the run recorded none
REPORT_FILE = "export_report.json"
GOLDEN_FILE = "golden.json"
TOKENIZER_FILE = "tokenizer.model"
THRESHOLDS = {"fp32_max_abs_error": 1e-4, "int8_min_cosine": 0.99, "int8_max_top1_drop_points": 1.0}
GOLDEN_TEXTS = [
    ("en", "a photo of a cat."),
    ("zh", "一张猫的照片。"),
    ("en", "Two red circles and 3 blue squares, left of the 🙂!"),
    ("zh", "左边有一个红色的大圆形，右边是2个蓝色方块。"),
]


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


@dataclass
class _Work:
    """Files written so far and the numbers measured for them."""

    folder: Path
    models: list[dict] = field(default_factory=list)
    measured: list[dict] = field(default_factory=list)


class _Phases:
    """`with phase(name):` shows the phase on the progress bar and records its seconds."""

    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.progress.update(self.task, description=name)
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 2)
        self.progress.advance(self.task)


def _samples_images_texts(samples) -> tuple[list[Image.Image], list[str]]:
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


def _default_parity_samples(count: int):
    from compress.demo_world import open_demo

    data = open_demo("test", size=max(1, count))
    return [data[i] for i in range(len(data))]


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=False)


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


def _model_entry(target, tower, precision, file, input_spec, embed_dim, delegation=None) -> dict:
    entry = {"target": target, "tower": tower, "precision": precision, "file": file, "input": input_spec,
             "output": {"name": "embedding", "shape": [1, embed_dim]}}
    if delegation is not None:
        entry["delegation"] = delegation
    return entry


def _check_args(student, targets, quantize, coreml_variants) -> list[str]:
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise CompressError(f"unknown export target(s) {', '.join(unknown) or '(none given)'}; targets: {', '.join(TARGETS)}")
    if quantize not in QUANTIZE:
        raise CompressError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    if not (student.has_image_tower and student.has_text_tower):
        raise CompressError("a bundle needs a student with both an image tower and a text tower")
    variants = list(coreml_variants) if coreml_variants else (["fp16", "int8-weights"] if quantize == "int8" else ["fp16"])
    bad = [v for v in variants if v not in COREML_VARIANTS]
    if bad:
        raise CompressError(f"unknown Core ML variant(s) {', '.join(bad)}; variants: {', '.join(COREML_VARIANTS)}")
    return variants


def export_bundle(
    student,
    out_dir: str | Path,
    targets: Sequence[str] = ("executorch",),
    quantize: str = "none",
    label_sets: Sequence[str] = ("demo-shape", "demo-color"),
    calibration_samples: Sequence | None = None,
    *,
    parity_samples: Sequence | None = None,
    parity_count: int = 32,
    zero_shot_count: int = 200,
    coreml_variants: Sequence[str] | None = None,
    int8_schemes: dict[str, str] | None = None,
    logit_scale: float | None = None,
    source: str | None = None,
    overwrite: bool = False,
    strict: bool = False,
    console: Console | None = None,
) -> ExportReport:
    """Write a bundle of `student` to `out_dir` and measure it; returns the report (also in the bundle).

    `calibration_samples`: real training `Sample`s (or PIL images) for static int8 calibration;
    required when `quantize="int8"`. `parity_samples`: held-out samples for the embedding checks
    (default: the demo world's test split). Zero-shot accuracy is measured on each demo label set's
    test images (`zero_shot_count` per set). With `strict`, a failed parity check raises.
    """
    console = console or make_console()
    targets = [t.strip() for t in targets if t.strip()]
    coreml = _check_args(student, targets, quantize, coreml_variants)
    sets = [resolve_label_set(name) for name in dict.fromkeys(n.strip() for n in label_sets if n.strip())]
    from compress.quant.pt2e import DEFAULT_SCHEMES

    schemes = {**DEFAULT_SCHEMES, **(int8_schemes or {})}
    calibration_images, calibration_texts = _samples_images_texts(calibration_samples)
    if quantize == "int8" and "executorch" in targets and not calibration_images:
        raise CompressError("int8 export needs calibration samples: real training images (and captions)")
    if parity_samples is None:
        parity_samples = _default_parity_samples(parity_count)
    parity_images, parity_texts = _samples_images_texts(parity_samples)
    if not parity_images or not parity_texts:
        raise CompressError("parity checks need samples with images and captions")
    out_dir = Path(out_dir)
    staging = _prepare_folder(out_dir, overwrite)
    student.eval()
    try:
        with torch.no_grad():
            report = _export(student, staging, targets, quantize, sets, coreml, schemes, calibration_images,
                             calibration_texts, parity_images, parity_texts, zero_shot_count, logit_scale, source, console)
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
    if failed and strict:
        raise CompressError(f"{out_dir}: {len(failed)} parity check(s) failed: " + ", ".join(c["name"] for c in failed))
    console.print(f"bundle: {out_dir}")
    return report


def _export(student, folder, targets, quantize, sets: list[LabelSet], coreml_variants, schemes, calibration_images,
            calibration_texts, parity_images, parity_texts, zero_shot_count, logit_scale, source, console) -> ExportReport:
    describe = student.describe()
    image_rule, text_rule = describe["image"], describe["text"]
    embed_dim = int(student.embed_dim)
    manifest_image = {"size": int(image_rule["image_size"]), "mean": list(image_rule["mean"]), "std": list(image_rule["std"]),
                      "resize": image_rule["resize"], "interpolation": image_rule.get("interpolation", "bilinear"),
                      "input": {"color": "RGB", "layout": "NCHW", "dtype": "float32", "range": [0, 1], "normalization": "inside_model"}}
    manifest_text = {"tokenizer": TOKENIZER_FILE, "max_length": int(text_rule["max_length"]), "vocab_size": int(text_rule["vocab_size"]),
                     "pad_id": text_rule["pad_id"], "unk_id": text_rule["unk_id"], "bos_id": text_rule["bos_id"],
                     "eos_id": text_rule["eos_id"], "truncation": "bos + first max_length-2 pieces + eos, then pad"}
    student.tokenizer.save(folder / TOKENIZER_FILE)
    tokenizer = BundleTokenizer(folder / TOKENIZER_FILE, manifest_text)
    image_model = ImageEncoderForExport(student.image_tower, manifest_image["mean"], manifest_image["std"]).eval()
    text_model = TextEncoderForExport(student.text_tower).eval()
    pixels = torch.from_numpy(image_input(parity_images[0], manifest_image))
    ids = torch.from_numpy(tokenizer(parity_texts[0]))
    work = _Work(folder)
    steps = len(targets) + (1 if quantize == "int8" and "executorch" in targets else 0) + len(sets) + 2
    with _progress(console) as progress:
        phase = _Phases(progress, progress.add_task("exporting bundle", total=steps))
        if "executorch" in targets:
            with phase("ExecuTorch fp32 (XNNPACK)"):
                _export_executorch(work, image_model, text_model, pixels, ids, None, None, None, embed_dim)
            if quantize == "int8":
                with phase("ExecuTorch int8 (PT2E + XNNPACK)"):
                    calibration = {
                        "image": [torch.from_numpy(image_input(im, manifest_image)) for im in calibration_images],
                        "text": [torch.from_numpy(tokenizer(t)) for t in calibration_texts],
                    }
                    _export_executorch(work, image_model, text_model, pixels, ids, "int8", schemes, calibration, embed_dim)
        if "coreml" in targets:
            with phase("Core ML (" + ", ".join(coreml_variants) + ")"):
                _export_coreml(work, image_model, text_model, pixels, ids, coreml_variants, embed_dim)
        label_entries = []
        for label_set in sets:
            with phase(f"label embeddings: {label_set.name}"):
                for lang in label_set.languages:
                    if lang not in student.languages:
                        continue
                    embeddings = label_embeddings(student, label_set, lang)
                    rel = f"labels/{label_set.name}.{lang}.json"
                    _write_json(folder / rel, label_file_content(label_set, lang, embeddings, "fp32 text encoder"))
                    label_entries.append({"set": label_set.name, "lang": lang, "file": rel, "classes": int(embeddings.shape[0])})
        with phase("golden inputs and outputs"):
            golden = _write_golden(work, student, tokenizer, manifest_image, parity_images[0], image_model, text_model)
        with phase("parity, size and latency"):
            data = _measure(work, student, image_model, text_model, tokenizer, manifest_image, sets, label_entries,
                            parity_images, parity_texts, zero_shot_count, quantize)
    data["seconds"] = phase.seconds
    data["golden_texts"] = len(golden["texts"])
    _write_json(folder / REPORT_FILE, data)
    manifest = {
        "format": "compress-bundle",
        "schema_version": SCHEMA_VERSION,
        "created_by": f"compress {compress.__version__}",
        "embed_dim": embed_dim,
        "languages": list(student.languages),
        "logit_scale": float(logit_scale if logit_scale is not None else DEFAULT_LOGIT_SCALE),
        "normalized_embeddings": True,
        "image": manifest_image,
        "text": manifest_text,
        "models": work.models,
        "labels": label_entries,
        "golden": GOLDEN_FILE,
        "report": REPORT_FILE,
        "model_info": {
            "family": describe.get("family"),
            "config": {**student.config, "tokenizer": TOKENIZER_FILE},
            "source": source,
            "parameters": {"image": sum(p.numel() for p in student.image_tower.parameters()),
                           "text": sum(p.numel() for p in student.text_tower.parameters())},
            "int8_schemes": schemes if quantize == "int8" else None,
            "exported_on": f"{platform.system()} {platform.machine()}, torch {torch.__version__}",
        },
        "files": file_entries(folder),
    }
    validate_manifest(manifest)
    _write_json(folder / MANIFEST, manifest)
    table, zero_shot_table = _tables(data)
    return ExportReport(folder=folder, data=data, table=table, zero_shot_table=zero_shot_table)


def _export_executorch(work, image_model, text_model, pixels, ids, quantize, schemes, calibration, embed_dim) -> None:
    from targets.executorch_target import ExecuTorchTarget

    target = ExecuTorchTarget()
    suffix = "" if quantize is None else ".int8"
    precision = "fp32" if quantize is None else "int8"
    for tower, model, example, input_spec in (
        ("image", image_model, pixels, {"name": "pixels", "kind": "tensor", "shape": list(pixels.shape), "dtype": "float32"}),
        ("text", text_model, ids, {"name": "input_ids", "kind": "tensor", "shape": list(ids.shape), "dtype": "int64"}),
    ):
        scheme = None if quantize is None else schemes[tower]
        result = target.export_program(model, example, work.folder / f"{tower}_encoder{suffix}.pte", quantize=scheme,
                                       calibration=None if calibration is None else calibration[tower])
        delegation = result.delegation.to_dict()
        if scheme:
            delegation["scheme"] = scheme
        work.models.append(_model_entry("executorch", tower, precision, result.path.name, input_spec, embed_dim, delegation))


def _export_coreml(work, image_model, text_model, pixels, ids, variants, embed_dim) -> None:
    from targets.coreml_target import CoreMLTarget

    target = CoreMLTarget()
    size = list(pixels.shape)
    for tower, model, example, kind, name, input_spec in (
        ("image", image_model, pixels, "image", "image", {"name": "image", "kind": "image", "shape": size, "dtype": "image"}),
        ("text", text_model, ids.to(torch.int32), "tensor", "input_ids",
         {"name": "input_ids", "kind": "tensor", "shape": list(ids.shape), "dtype": "int32"}),
    ):
        converted = target.convert(model, example, input_kind=kind, input_name=name)
        for variant in variants:
            rel = f"{tower}_encoder{COREML_SUFFIX[variant]}.mlpackage"
            target.save(target.compress(converted, COREML_VARIANTS[variant]), work.folder / rel)
            work.models.append(_model_entry("coreml", tower, variant, rel, input_spec, embed_dim))


def _executorch_modules(work) -> dict[tuple[str, str], Any]:
    from targets.executorch_target import PteModule

    return {(m["tower"], m["precision"]): PteModule(work.folder / m["file"]) for m in work.models if m["target"] == "executorch"}


def _write_golden(work, student, tokenizer, manifest_image, image, image_model, text_model) -> dict:
    """golden.json: texts with ids and embeddings, one picture with its model input summary and embedding.

    The ids written come from the bundle tokenizer; they must equal the student's own, or the
    bundle would describe a tokenizer its models were not trained with.
    """
    modules = _executorch_modules(work)
    texts = []
    for lang, text in GOLDEN_TEXTS:
        if lang not in student.languages:
            continue
        ids = tokenizer(text)
        if not np.array_equal(ids, student.tokenize([text]).numpy()):
            raise CompressError(f"bundle tokenization of {text!r} differs from the student's tokenizer")
        run = modules.get(("text", "fp32"), text_model)
        embedding = run(torch.from_numpy(ids))[0]
        texts.append({"lang": lang, "text": text, "ids": ids[0].tolist(), "embedding": [float(v) for v in embedding]})
    (work.folder / "golden").mkdir(exist_ok=True)
    image.convert("RGB").save(work.folder / "golden" / "image_0.png")
    reloaded = Image.open(work.folder / "golden" / "image_0.png")
    pixels = image_input(reloaded, manifest_image)
    run = modules.get(("image", "fp32"), image_model)
    embedding = run(torch.from_numpy(pixels))[0]
    golden = {
        "about": "Apps check their tokenizer against `ids` and their whole pipeline against `embedding` (cosine > 0.999).",
        "texts": texts,
        "images": [{"file": "golden/image_0.png", "input_shape": list(pixels.shape),
                    "input_channel_means": [float(v) for v in pixels[0].mean(axis=(1, 2))],
                    "embedding": [float(v) for v in embedding]}],
    }
    _write_json(work.folder / GOLDEN_FILE, golden)
    return golden


def _check(name: str, value: float, limit: float, at_most: bool) -> dict:
    return {"name": name, "value": float(value), "limit": limit, "passed": bool(value <= limit if at_most else value >= limit)}


def _measure(work, student, image_model, text_model, tokenizer, manifest_image, sets, label_entries,
             images, texts, zero_shot_count, quantize) -> dict:
    """Parity of every model against eager fp32 on real inputs; sizes, latency; zero-shot on demo sets."""
    image_inputs = [torch.from_numpy(image_input(im, manifest_image)) for im in images]
    text_inputs = [torch.from_numpy(tokenizer(t)) for t in texts]
    eager = {"image": torch.cat([image_model(x) for x in image_inputs]), "text": torch.cat([text_model(x) for x in text_inputs])}
    inputs = {"image": image_inputs, "text": text_inputs}
    modules = _executorch_modules(work)
    outputs = {key: torch.cat([module(x) for x in inputs[key[0]]]) for key, module in modules.items()}
    fp32_bytes = {}
    rows, checks = [], []
    for entry in work.models:
        path = work.folder / entry["file"]
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        row = {"target": entry["target"], "tower": entry["tower"], "precision": entry["precision"], "file": entry["file"], "bytes": size}
        if entry["target"] == "executorch":
            key = (entry["tower"], entry["precision"])
            out = outputs[key]
            row["latency_ms"] = latency_ms(modules[key], inputs[entry["tower"]][0], warmup=2, iterations=10)
            row["delegated_fraction"] = entry["delegation"]["fraction"]
            row["max_abs_error_vs_eager"] = float((out - eager[entry["tower"]]).abs().max())
            row["cosine_vs_eager"] = embedding_cosine(eager[entry["tower"]], out)
            if entry["precision"] == "fp32":
                fp32_bytes[("executorch", entry["tower"])] = size
                checks.append(_check(f"executorch {entry['tower']} fp32 max abs error vs eager", row["max_abs_error_vs_eager"],
                                     THRESHOLDS["fp32_max_abs_error"], at_most=True))
            else:
                row["cosine_vs_fp32"] = embedding_cosine(outputs[(entry["tower"], "fp32")], out)
                checks.append(_check(f"executorch {entry['tower']} int8 mean cosine vs fp32", row["cosine_vs_fp32"],
                                     THRESHOLDS["int8_min_cosine"], at_most=False))
        else:
            if entry["precision"] == "fp16":
                fp32_bytes[("coreml", entry["tower"])] = size
            row.update(_coreml_parity(work.folder / entry["file"], entry, inputs[entry["tower"]], eager[entry["tower"]]))
        rows.append(row)
    for row in rows:
        base = fp32_bytes.get((row["target"], row["tower"]))
        row["size_ratio"] = round(base / row["bytes"], 3) if base else None
    zero_shot = _zero_shot(modules, sets, label_entries, manifest_image, zero_shot_count, work) if modules else []
    for entry in zero_shot:
        if entry.get("top1_int8") is not None:
            checks.append(_check(f"zero-shot top-1 drop {entry['set']} ({entry['lang']}), points", entry["drop_points"],
                                 THRESHOLDS["int8_max_top1_drop_points"], at_most=True))
    return {
        "thresholds": THRESHOLDS,
        "samples": {"images": len(images), "texts": len(texts)},
        "quantize": quantize,
        "models": rows,
        "zero_shot": zero_shot,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }


def _coreml_parity(path: Path, entry: dict, inputs: list[torch.Tensor], eager: torch.Tensor) -> dict:
    """Core ML cosine to eager fp32; predictions need macOS, so elsewhere the report says so."""
    if sys.platform != "darwin":
        return {"cosine_vs_eager": None, "note": "Core ML cosines need macOS (prediction); its specs were validated"}
    import coremltools as ct

    model = ct.models.MLModel(str(path))
    outputs = []
    for x in inputs:
        if entry["tower"] == "image":
            array = (x[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
            feed = {entry["input"]["name"]: Image.fromarray(array)}
        else:
            feed = {entry["input"]["name"]: x.numpy().astype(np.int32)}
        outputs.append(torch.from_numpy(np.asarray(model.predict(feed)["embedding"], dtype=np.float32)).reshape(1, -1))
    return {"cosine_vs_eager": embedding_cosine(eager, torch.cat(outputs))}


def _zero_shot(modules, sets, label_entries, manifest_image, count, work) -> list[dict]:
    """Top-1 on each demo label set's test images: fp32 .pte, int8 .pte, both against the label files."""
    from compress.demo_world import task_samples

    results = []
    for label_set in sets:
        if label_set.task is None or count <= 0:
            continue
        images, labels = task_samples(label_set.task, split="test", count=count)
        labels = torch.tensor(labels)
        inputs = [torch.from_numpy(image_input(im, manifest_image)) for im in images]
        embeddings = {
            precision: torch.cat([modules[("image", precision)](x) for x in inputs])
            for precision in ("fp32", "int8") if ("image", precision) in modules
        }
        for entry in label_entries:
            if entry["set"] != label_set.name:
                continue
            classes = torch.tensor(json.loads((work.folder / entry["file"]).read_text(encoding="utf-8"))["embeddings"])
            top1 = {p: (e @ classes.T).argmax(dim=1).eq(labels).float().mean().item() for p, e in embeddings.items()}
            row = {"set": label_set.name, "lang": entry["lang"], "count": len(images),
                   "top1_fp32": top1.get("fp32"), "top1_int8": top1.get("int8")}
            if row["top1_int8"] is not None and row["top1_fp32"] is not None:
                row["drop_points"] = 100.0 * (row["top1_fp32"] - row["top1_int8"])
            results.append(row)
    return results


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _tables(data: dict) -> tuple[Table, Table | None]:
    notes = sorted({row["note"] for row in data["models"] if row.get("note")})
    table = Table(title="bundle: size and parity", caption="; ".join(notes) or None)
    for column in ("model", "MB", "smaller", "ms", "deleg.", "max err", "cosine"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in data["models"]:
        cosine = row.get("cosine_vs_fp32", row.get("cosine_vs_eager"))
        table.add_row(f"{row['target']} {row['tower']} {row['precision']}", f"{row['bytes'] / 1e6:.2f}",
                      _fmt(row.get("size_ratio"), "{:.2f}x"), _fmt(row.get("latency_ms"), "{:.2f}"),
                      _fmt(row.get("delegated_fraction"), "{:.0%}"), _fmt(row.get("max_abs_error_vs_eager"), "{:.0e}"),
                      _fmt(cosine, "{:.4f}"))
    zero_shot = None
    if data["zero_shot"]:
        zero_shot = Table(title="bundle: zero-shot top-1 on demo test images")
        for column in ("label set", "lang", "images", "fp32 .pte", "int8 .pte", "drop (points)"):
            zero_shot.add_column(column, justify="left" if column in ("label set", "lang") else "right")
        for row in data["zero_shot"]:
            zero_shot.add_row(row["set"], row["lang"], str(row["count"]), _fmt(row["top1_fp32"], "{:.1%}"),
                              _fmt(row["top1_int8"], "{:.1%}"), _fmt(row.get("drop_points"), "{:+.1f}"))
    return table, zero_shot
