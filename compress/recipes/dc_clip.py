"""DC-CLIP: distil a bilingual CLIP teacher into a phone-sized student, then align the student.

    python -m compress recipe dc_clip                       # the demo world, end to end
    python -m compress recipe dc_clip --teacher altclip:/models/AltCLIP --data pairs.jsonl

1. Load the frozen teacher and the bilingual training data.
2. Train the student's SentencePiece tokenizer on the training captions (en + zh).
3. Stage 1: each student tower regresses the teacher's embeddings (feature distillation).
4. Stage 2: contrastive alignment of the two student towers on the image-text pairs.
5. Zero-shot evaluation of teacher and student in English and Chinese; report.json.
6. The bundle for phone apps (ExecuTorch and Core ML), with its parity and size table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

import compress
from compress.console import make_console
from compress.data import spread_samples
from compress.distill import DistillConfig
from compress.distill.report import REPORT_FILE, STUDENT_DIR
from compress.eval.datasets import demo_task_set
from compress.eval.report import write_eval_report
from compress.eval.runner import evaluate_models
from compress.files import write_json_atomically
from compress.recipes import config_source
from compress.recipes.schema import Section, check_keys, read_section
from students.tokenizer import FILENAME as TOKENIZER_FILE
from students.tokenizer import train_tokenizer

RECIPE_FILE = "recipe.json"  # the config the run was started with, in the run folder
EVAL_DIR = "eval"
BUNDLE_DIR = "bundle"

# The config's shape (configs/dc_clip.yaml holds every key). `student` and `distill` are passed
# whole to their owners (the student family, DistillConfig), which check their keys and hold
# their defaults; the bundle's defaults are the export settings', so every export key is stated.
CONFIG = Section(required=("name", "runs_dir", "teacher", "data", "tokenizer", "eval"),
                 optional=("val_data", "student", "distill", "export"))
TOKENIZER = Section(required=("vocab_size", "model_type"))
EVAL = Section(required=("languages", "demo_tasks", "demo_count", "datasets"), optional=("demo_image_size",))
EXPORT = Section(required=("targets", "quantize", "labels", "calibration_count", "parity_count", "zero_shot_count"))


def read_config(config: Any) -> dict[str, Any]:
    """The recipe's config, checked strictly: an unknown or missing key is an error naming it (and the file)."""
    where = config_source(config, "dc_clip")
    config = read_section(config, CONFIG, where)
    config["tokenizer"] = read_section(config["tokenizer"], TOKENIZER, f"{where}: tokenizer")
    config["eval"] = read_section(config["eval"], EVAL, f"{where}: eval")
    config["distill"] = check_keys(config.get("distill") or {}, DistillConfig.keys(), f"{where}: distill")
    if config.get("export"):
        config["export"] = read_section(config["export"], EXPORT, f"{where}: export")
    return config


def zero_shot_scores(eval_results, languages) -> dict[str, dict[str, dict[str, float]]]:
    """scores[model][task][lang] = top-1 accuracy."""
    return {
        model: {dataset: {lang: eval_results.value(model, dataset, lang, "top1") for lang in languages}
                for dataset in by_dataset}
        for model, by_dataset in eval_results.results.items()
    }


def student_section(config: dict[str, Any]) -> dict[str, Any]:
    """The `student:` section: a mapping of options, or the path of a student config file
    (e.g. the `chosen_student.yaml` that `compress search` writes)."""
    section = config.get("student") or {}
    if isinstance(section, (str, Path)):
        from compress.search.student_file import read_student_config

        return read_student_config(section)
    return section


def run(config: dict[str, Any], resume: bool = False) -> dict[str, Any]:
    config = read_config(config)
    console = make_console()
    run_dir = Path(config["runs_dir"]) / config["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(run_dir / RECIPE_FILE, config)
    console.rule(f"dc_clip → {run_dir}")

    # 1. Teacher and data.
    teacher = compress.load_teacher(config["teacher"])
    data = compress.open_data(config["data"])
    val_data = compress.open_data(config["val_data"]) if config.get("val_data") else None
    console.print(f"teacher {teacher.name} ({teacher.fingerprint[:40]}…), {len(data)} training samples")

    # 2. The student owns its tokenizer, trained on the training captions of both languages.
    tokenizer_path = run_dir / TOKENIZER_FILE
    if not (resume and tokenizer_path.is_file()):
        tok = config["tokenizer"]
        train_tokenizer([caption for caption, _ in data.captions()], tokenizer_path,
                        vocab_size=tok["vocab_size"], model_type=tok["model_type"])
    student_config = {**student_section(config), "tokenizer": str(tokenizer_path)}
    # Unless told otherwise the student embeds into the teacher's space: stage 1 then needs no
    # adapters, so the two student towers it trains land in one shared space.
    student_config.setdefault("embed_dim", int(teacher.embed_dim))
    student = compress.build_student(student_config)

    # 3 + 4. Feature distillation, then alignment.
    distiller = compress.Distiller(teacher, student, data=data, val_data=val_data, run_dir=run_dir,
                                   config=DistillConfig(**config["distill"]))
    training = distiller.fit(stage="both", resume=resume)

    # 5. Zero-shot evaluation of teacher and student, through the same evaluation path.
    ev = config["eval"]
    languages = list(ev["languages"])
    datasets = [demo_task_set(name, count=ev["demo_count"], image_size=ev.get("demo_image_size"))
                for name in ev["demo_tasks"]]
    datasets += [Path(p) for p in ev["datasets"]]
    results = evaluate_models({"teacher": teacher, "student": student}, datasets, languages)
    write_eval_report(results, run_dir / EVAL_DIR, console=console)

    report_path = run_dir / REPORT_FILE
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else dict(training)
    report["zero_shot_top1"] = zero_shot_scores(results, languages)
    write_json_atomically(report_path, report)

    # 6. The bundle the apps load, measured against the trained student.
    if config.get("export"):
        report["bundle"] = export_run_bundle(student, config["export"], data, val_data, run_dir, training, console)
        write_json_atomically(report_path, report)
    console.print(f"report: {report_path}")
    return report


def export_run_bundle(student, options: dict[str, Any], data, val_data, run_dir: Path, training: dict,
                      console: Console) -> dict[str, Any]:
    """Write `run_dir/bundle` (int8 calibrated on training samples, parity on held-out ones); its summary."""
    from compress.bundle import export_bundle

    calibration = spread_samples(data, options["calibration_count"], "training data (calibration)") \
        if options["quantize"] == "int8" else None
    parity = spread_samples(val_data, options["parity_count"], "validation data (parity)") if val_data else None
    bundle = export_bundle(
        student, run_dir / BUNDLE_DIR, targets=options["targets"], quantize=options["quantize"],
        label_sets=options["labels"], calibration_samples=calibration, parity_samples=parity,
        parity_count=options["parity_count"], zero_shot_count=options["zero_shot_count"],
        logit_scale=training.get("logit_scale"), source=str(run_dir / STUDENT_DIR), overwrite=True, console=console,
    )
    return {"folder": str(bundle.folder), "passed": bundle.passed, "checks": bundle.data["checks"]}
