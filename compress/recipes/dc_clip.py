"""DC-CLIP: distil a bilingual CLIP teacher into a phone-sized student, then align the student.

    python -m compress recipe dc_clip                       # the demo world, end to end
    python -m compress recipe dc_clip --teacher altclip:/models/AltCLIP --data pairs.jsonl
    python -m compress recipe dc_clip --resume              # skip finished stages, continue the interrupted one
    python -m compress recipe dc_clip --stages eval,export  # a subset, reusing the run folder's earlier results
    python -m compress recipe dc_clip --preset paper --teacher altclip:/models/AltCLIP --data "shards/{000..099}.tar"

The stages, in order, each recorded in the run folder's stages.json:

- search (with a `search:` section, as in the paper preset): `compress search` under the section's
  phone budgets; the student is built from the chosen_student.yaml it writes.
- tokenizer: the student's SentencePiece tokenizer, trained on the training captions (en + zh).
- cache (with a `cache:` section): the teacher's embeddings computed once, or reused.
- distill: stage 1, each student tower regresses the teacher's embeddings (feature distillation).
- align: stage 2, contrastive alignment of the two student towers on the image-text pairs
  (under int8 fake quantization with `distill.qat: true`).
- eval: zero-shot evaluation of teacher and student in English and Chinese.
- export (with an `export:` section): the bundle for phone apps (ExecuTorch and Core ML), with its
  parity and size table.
- bundle_eval: zero-shot evaluation of the bundle's ExecuTorch models (int8 when quantized).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

import compress
from compress.console import make_console
from compress.data import spread_samples
from compress.distill import DistillConfig
from compress.distill import checkpoint as ckpt
from compress.distill.distributed import World, join_from_env, leave
from compress.distill.report import REPORT_FILE, STUDENT_DIR
from compress.errors import CompressError
from compress.eval.datasets import demo_task_set
from compress.eval.report import write_eval_report
from compress.eval.runner import evaluate_models
from compress.files import write_json_atomically
from compress.recipes import PRESET_KEY, RecipeConfig, config_source
from compress.recipes.schema import Section, check_keys, read_section
from compress.recipes.search_stage import chosen_student, read_search_section, run_search_stage
from compress.recipes.stages import RUNNING, StageLog, config_differences, select_stages
from students.tokenizer import FILENAME as TOKENIZER_FILE
from students.tokenizer import train_tokenizer

RECIPE_FILE = "recipe.json"  # the config the run was started with, in the run folder
EVAL_DIR = "eval"
BUNDLE_DIR = "bundle"
CACHE_DIR = "teacher_cache"  # the cache's folder when the `cache:` section names none

# The config's shape (configs/dc_clip.yaml holds every key). `student` and `distill` are passed
# whole to their owners (the student family, DistillConfig), which check their keys and hold
# their defaults; the bundle's defaults are the export settings', so every export key is stated.
CONFIG = Section(
    required=("name", "runs_dir", "teacher", "data", "tokenizer", "eval"),
    optional=(PRESET_KEY, "val_data", "student", "distill", "cache", "export", "search"),
)
TOKENIZER = Section(required=("vocab_size", "model_type"), optional=("character_coverage",))
EVAL = Section(required=("languages", "demo_tasks", "demo_count", "datasets"), optional=("demo_image_size",))
CACHE = Section(required=("augmentation", "views", "batch_size", "shard_size"), optional=("folder", "num_workers"))
EXPORT = Section(
    required=("targets", "quantize", "labels", "calibration_count", "parity_count", "zero_shot_count"), optional=("workers",)
)
SEARCH = Section(
    required=("budgets", "image_space", "text_space", "latency_lut", "lut_unknown", "proxy", "rank_by", "pick")
    + ("warmup", "repeats")
)


def read_config(config: Any) -> dict[str, Any]:
    """The recipe's config, checked strictly: an unknown or missing key is an error naming it (and the file)."""
    where, source = config_source(config, "dc_clip"), getattr(config, "source", None)
    config = RecipeConfig(read_section(config, CONFIG, where), source=source)  # errors keep naming the file
    config["tokenizer"] = read_section(config["tokenizer"], TOKENIZER, f"{where}: tokenizer")
    config["eval"] = read_section(config["eval"], EVAL, f"{where}: eval")
    config["distill"] = check_keys(config.get("distill") or {}, DistillConfig.keys(), f"{where}: distill")
    if not config["data"]:
        raise CompressError(
            f"{where}: data is not set; give the training pairs with --data (a .jsonl manifest, or tar shards "
            'such as "shards/{000..099}.tar")'
        )
    if config.get("search"):
        if config.get("student"):
            raise CompressError(
                f"{where}: student and search are both set; the search chooses the student (put tower options "
                "in the search spaces' `fixed:`), so set one of them to null"
            )
        config["search"] = read_search_section(read_section(config["search"], SEARCH, f"{where}: search"), f"{where}: search")
    if config.get("cache"):
        config["cache"] = read_section(config["cache"], CACHE, f"{where}: cache")
    if config.get("export"):
        config["export"] = read_section(config["export"], EXPORT, f"{where}: export")
    return config


def zero_shot_scores(eval_results, languages) -> dict[str, dict[str, dict[str, float]]]:
    """scores[model][task][lang] = top-1 accuracy."""
    return {
        model: {dataset: {lang: eval_results.value(model, dataset, lang, "top1") for lang in languages} for dataset in by_dataset}
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


STAGES = ("search", "tokenizer", "cache", "distill", "align", "eval", "export", "bundle_eval")
TRAINING_STAGES = ("cache", "distill", "align")  # the stages every rank of a torchrun job runs
STAGE1_CHECKPOINT = "stage1_checkpoint"  # the checkpoint stage 1 ended at, kept so stage 2 can be rerun
BUNDLE_EVAL_DIR = "eval_bundle"


def run(config: dict[str, Any], resume: bool = False, stages: str | list[str] | None = None) -> dict[str, Any]:
    """Run the recipe's stages in order (all, or the `stages` subset) and return report.json's content.

    Every stage is recorded in the run folder's stages.json. `resume` skips the finished stages and
    restarts an interrupted training stage from its checkpoint; a subset reuses the outputs earlier
    stages left in the run folder. Either refuses a config that differs from the one the run
    folder was started with.
    """
    config = read_config(config)
    selected = select_stages(stages, STAGES)
    if {"eval", "bundle_eval"} & set(selected):
        check_eval_datasets(config)  # before hours of training, not after
    world, created = join_from_env(str(config["distill"].get("device", "auto")))
    try:
        return _run_stages(config, selected, resume, stages is not None, world)
    finally:
        leave(created)


def _run_stages(config: dict[str, Any], selected: tuple[str, ...], resume: bool, subset: bool, world) -> dict[str, Any]:
    # Under torchrun every rank trains; rank 0 alone trains the tokenizer, evaluates, exports and writes.
    console = make_console() if world.writes else Console(quiet=True)
    run_dir = Path(config["runs_dir"]) / config["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    log = StageLog(run_dir, writes=world.writes)
    if resume or subset:
        check_same_config(run_dir / RECIPE_FILE, config)
    if world.distributed and config.get("search") and "search" in selected and not log.finished("search"):
        raise CompressError(
            f"{run_dir}: the search stage runs in one process (it lowers and times every candidate on this machine); "
            "run it first with the same arguments and --stages search, then start this job again with --resume"
        )
    world.barrier()  # every rank has read the records before rank 0 rewrites them
    if world.writes:
        if not (resume or subset):
            log.reset()
        write_json_atomically(run_dir / RECIPE_FILE, config)
    console.rule(f"dc_clip → {run_dir}" + (f" ({world.size} ranks)" if world.distributed else ""))
    run = RecipeRun(config, run_dir, log, console, resume=resume, world=world)

    for stage in STAGES:
        if stage not in selected or not run.applies(stage):
            continue
        if resume and log.finished(stage):
            console.print(f"[dim]stage {stage}: finished earlier, skipped")
            continue
        if stage in TRAINING_STAGES or world.writes:
            log.run(stage, getattr(run, f"stage_{stage}"))
        if stage in ("search", "tokenizer"):
            world.barrier()  # the other ranks build the student with them
        run.update_report()
    report = run.update_report()
    console.print(f"report: {run_dir / REPORT_FILE}")
    return report


def check_eval_datasets(config: dict[str, Any]) -> None:
    """Open every ELEVATER folder in `eval.datasets`, so a wrong path fails at once, naming the setting."""
    from compress.eval.datasets import open_classification

    for path in config["eval"]["datasets"]:
        try:
            open_classification(path)
        except CompressError as exc:
            raise CompressError(
                f"{config_source(config, 'dc_clip')}: eval.datasets: {exc} (list the ELEVATER folders you have, "
                "e.g. --set 'eval.datasets=[/data/elevater/cifar-10]', or [] for none)"
            ) from None


def check_same_config(recorded: Path, config: dict[str, Any]) -> None:
    """Refuse to reuse a run folder with a config other than the one it was started with."""
    if not recorded.is_file():
        return
    try:
        saved = json.loads(recorded.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CompressError(f"{recorded}: unreadable ({exc})") from None
    was, now = saved.get(PRESET_KEY), config.get(PRESET_KEY)
    if was != now:
        raise CompressError(
            f"{recorded.parent}: this run was started with "
            + (f"the {was} preset (--preset {was})" if was else "a config of its own")
            + " but is now continued with "
            + (f"the {now} preset" if now else "another config")
            + "; continue it with what it was started with, or start a new run (--name)"
        )
    changed = config_differences(saved, config)
    if changed:
        raise CompressError(
            f"{recorded.parent}: this run was started with another config; changed: {'; '.join(changed)}. "
            "Undo the changes to continue it, or start a new run (--name)"
        )


class RecipeRun:
    """The recipe's stages over one run folder; each stage method returns the outputs it records."""

    def __init__(
        self,
        config: dict[str, Any],
        run_dir: Path,
        log: StageLog,
        console: Console,
        resume: bool = False,
        world: World | None = None,
    ):
        self.config, self.run_dir, self.log, self.console = config, run_dir, log, console
        self.world = world or World()
        # The stages a kill interrupted (recorded as running when this process started): under
        # --resume their checkpoints are continued.
        self.interrupted = {stage for stage in STAGES if resume and log.status(stage) == RUNNING}
        # Rank 0 loads the teacher first: a teacher that is built on first use (the demo's) is then
        # built once and found in the cache by the other ranks.
        if not self.world.writes:
            self.world.barrier()
        self.teacher = compress.load_teacher(config["teacher"])
        if self.world.writes:
            self.world.barrier()
        self.data = compress.open_data(config["data"])
        self.val_data = compress.open_data(config["val_data"]) if config.get("val_data") else None
        console.print(f"teacher {self.teacher.name} ({self.teacher.fingerprint[:40]}…), {len(self.data)} training samples")
        self.tokenizer_path = run_dir / TOKENIZER_FILE
        self._student = None
        self._distiller = None
        self.training: dict[str, Any] | None = None  # the last fit's report, when this process trained

    def applies(self, stage: str) -> bool:
        """Whether the config asks for `stage` at all (the search, the cache and the bundle are optional)."""
        if stage == "search":
            return bool(self.config.get("search"))
        if stage == "cache":
            return bool(self.config.get("cache"))
        if stage == "export":
            return bool(self.config.get("export"))
        if stage == "bundle_eval":
            export = self.config.get("export") or {}
            return "executorch" in (export.get("targets") or [])
        return True

    # ------------------------------------------------------------------ what the stages share

    def _cache_folder(self) -> Path:
        folder = self.config["cache"].get("folder")
        return Path(folder).expanduser() if folder else self.run_dir / CACHE_DIR

    def student(self):
        """The student being trained: built from the config (and the run's tokenizer) once per process."""
        if self._student is None:
            if not self.tokenizer_path.is_file():
                raise CompressError(
                    f"{self.run_dir}: no student tokenizer ({TOKENIZER_FILE}); run the tokenizer stage "
                    "first (--stages tokenizer,...)"
                )
            chosen = chosen_student(self.run_dir) if self.config.get("search") else student_section(self.config)
            student_config = {**chosen, "tokenizer": str(self.tokenizer_path)}
            # Unless told otherwise the student embeds into the teacher's space: stage 1 then needs no
            # adapters, so the two student towers it trains land in one shared space.
            student_config.setdefault("embed_dim", int(self.teacher.embed_dim))
            self._student = compress.build_student(student_config)
        return self._student

    def distiller(self):
        if self._distiller is None:
            options = {"val_data": self.val_data, "run_dir": self.run_dir, "config": DistillConfig(**self.config["distill"])}
            if self.config.get("cache"):
                from compress.cache import distiller_from_cache

                self._distiller = distiller_from_cache(
                    self._cache_folder(), self.student(), self.data, teacher=self.teacher, **options
                )
            else:
                self._distiller = compress.Distiller(self.teacher, self.student(), data=self.data, **options)
        return self._distiller

    def trained_student(self):
        """The student after training: this process's, or the one a finished training stage saved."""
        if self._distiller is not None and self._distiller.state is not None:
            return self._distiller.student
        folder = self.run_dir / STUDENT_DIR
        if not (self.log.finished("align") or self.log.finished("distill")) or not folder.is_dir():
            raise CompressError(f"{self.run_dir}: no trained student yet; run the distill or align stage first")
        student = compress.build_student(folder)
        student.eval()
        return student

    def training_report(self) -> dict[str, Any]:
        if self.training is not None:
            return self.training
        path = self.run_dir / REPORT_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def eval_datasets(self) -> list:
        ev = self.config["eval"]
        datasets = [
            demo_task_set(name, count=ev["demo_count"], image_size=ev.get("demo_image_size")) for name in ev["demo_tasks"]
        ]
        return datasets + [Path(p) for p in ev["datasets"]]

    def update_report(self) -> dict[str, Any]:
        """report.json: the training report with each later stage's results and the stage records."""
        if not self.world.writes:
            return dict(self.training or {})
        path = self.run_dir / REPORT_FILE
        report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        for stage, key in (
            ("eval", "zero_shot_top1"),
            ("eval", "retention"),
            ("export", "bundle"),
            ("bundle_eval", "bundle_zero_shot_top1"),
        ):
            # (a run folder evaluated before retention was recorded lacks it)
            if self.log.finished(stage) and key in self.log.outputs(stage):
                report[key] = self.log.outputs(stage)[key]
        if self.log.finished("search"):
            report["search"] = self.log.outputs("search")
        report[PRESET_KEY] = self.config.get(PRESET_KEY)
        report["recipe_stages"] = self.log.to_dict()
        write_json_atomically(path, report)
        return report

    # ------------------------------------------------------------------ the stages

    def stage_search(self) -> dict[str, Any]:
        """The student's towers, chosen by the architecture search under the section's budgets."""
        return run_search_stage(
            self.config["search"],
            self.teacher,
            int(self.config["tokenizer"]["vocab_size"]),
            str(self.config["distill"].get("device", "auto")),
            self.run_dir,
            self.console,
            f"{config_source(self.config, 'dc_clip')}: search",
        )

    def stage_tokenizer(self) -> dict[str, Any]:
        """The student owns its tokenizer, trained on the training captions of both languages."""
        tok = self.config["tokenizer"]
        train_tokenizer(
            [caption for caption, _ in self.data.captions()],
            self.tokenizer_path,
            vocab_size=tok["vocab_size"],
            model_type=tok["model_type"],
            character_coverage=tok.get("character_coverage", 1.0),
        )
        return {"tokenizer": str(self.tokenizer_path)}

    def stage_cache(self) -> dict[str, Any]:
        """Teacher embeddings computed once: built, or reused when the folder already holds them."""
        from compress.cache import build_cache

        section, folder = self.config["cache"], self._cache_folder()
        result = build_cache(
            self.teacher,
            self.data,
            folder,
            batch_size=section["batch_size"],
            shard_size=section["shard_size"],
            augmentation=section["augmentation"],
            views=section["views"],
            # data-loading processes: the section's, else the training stages'
            num_workers=section.get("num_workers", self.config["distill"].get("num_workers", 0)),
            console=self.console,
        )
        return {
            "folder": str(folder),
            "shards_built": len(result.shards_built),
            "shards_kept": len(result.shards_kept),
            "samples_embedded": result.samples,
        }

    def stage_distill(self) -> dict[str, Any]:
        """Stage 1, feature distillation; an interrupted one continues from its checkpoint."""
        distiller = self.distiller()
        resume = "distill" in self.interrupted and ckpt.latest_checkpoint(distiller.checkpoint_dir) is not None
        self.training = distiller.fit("distill", resume=resume)
        # Stage 2 starts from here; keep the checkpoint so that stage can be rerun on its own.
        kept = self.run_dir / STAGE1_CHECKPOINT
        if self.world.writes:
            if kept.exists():
                shutil.rmtree(kept)
            shutil.copytree(ckpt.latest_checkpoint(distiller.checkpoint_dir), kept)
        return self._training_outputs("distill", kept)

    def stage_align(self) -> dict[str, Any]:
        """Stage 2, contrastive alignment (with QAT when `distill.qat`), from where stage 1 ended."""
        distiller = self.distiller()
        if distiller.state is not None and "distill" in distiller.state.completed_stages:
            self.training = distiller.fit("align")  # stage 1 ran in this process
        elif "align" in self.interrupted and ckpt.latest_checkpoint(distiller.checkpoint_dir):
            self.training = distiller.fit("align", resume=True)  # an interrupted stage 2
        elif (self.run_dir / STAGE1_CHECKPOINT).is_dir() and self.log.finished("distill"):
            if self.world.writes:
                ckpt.remove_checkpoints(distiller.checkpoint_dir)  # stage 2 again, from the end of stage 1
            self.world.barrier()
            self.training = distiller.fit("align", resume=True, checkpoint=self.run_dir / STAGE1_CHECKPOINT)
        else:
            self.console.print("[yellow]stage align: no stage-1 result in this run; aligning the untrained student")
            self.training = distiller.fit("align")
        return self._training_outputs("align", None)

    def _training_outputs(self, stage: str, kept: Path | None) -> dict[str, Any]:
        info = self.training["stages"][stage]
        outputs = {
            "student": str(self.run_dir / STUDENT_DIR),
            "global_step": self.training["global_step"],
            "steps": info["steps"],
            "final_loss": info["final_loss"],
            "train_seconds": info["seconds"],
            "logit_scale": self.training.get("logit_scale"),
            "resumed_from": self.training["resumed_from"],
        }
        if kept is not None:
            outputs["checkpoint"] = str(kept)
        if stage == "align":
            outputs["qat"] = bool(self.config["distill"].get("qat", False))
        return outputs

    def stage_eval(self) -> dict[str, Any]:
        """Zero-shot evaluation of teacher and student, through the same evaluation path."""
        languages = list(self.config["eval"]["languages"])
        results = evaluate_models({"teacher": self.teacher, "student": self.trained_student()}, self.eval_datasets(), languages)
        write_eval_report(results, self.run_dir / EVAL_DIR, console=self.console)
        scores = zero_shot_scores(results, languages)
        # retention[task][lang]: the student's top-1 as a fraction of the teacher's (None where the teacher scores 0)
        teacher = scores["teacher"]
        retention = {
            task: {lang: top1 / teacher[task][lang] if teacher[task][lang] else None for lang, top1 in by_lang.items()}
            for task, by_lang in scores["student"].items()
        }
        return {"folder": str(self.run_dir / EVAL_DIR), "zero_shot_top1": scores, "retention": retention}

    def stage_export(self) -> dict[str, Any]:
        """The bundle the apps load, measured against the trained student."""
        bundle = export_run_bundle(
            self.trained_student(),
            self.config["export"],
            self.data,
            self.val_data,
            self.run_dir,
            self.training_report(),
            self.console,
        )
        return {"bundle": bundle}

    def stage_bundle_eval(self) -> dict[str, Any]:
        """Zero-shot evaluation of the bundle's ExecuTorch models (int8 when the bundle is quantized), as an app runs them."""
        from compress.bundle import MANIFEST, BundleEncoder

        if not (self.run_dir / BUNDLE_DIR / MANIFEST).is_file():
            raise CompressError(f"{self.run_dir / BUNDLE_DIR}: no bundle yet; run the export stage first")
        precision = "int8" if self.config["export"]["quantize"] == "int8" else "fp32"
        languages = list(self.config["eval"]["languages"])
        name = f"bundle-{precision}"
        results = evaluate_models(
            {name: BundleEncoder(self.run_dir / BUNDLE_DIR, precision=precision)}, self.eval_datasets(), languages
        )
        write_eval_report(results, self.run_dir / BUNDLE_EVAL_DIR, console=self.console)
        return {
            "folder": str(self.run_dir / BUNDLE_EVAL_DIR),
            "bundle_zero_shot_top1": zero_shot_scores(results, languages)[name],
        }


def export_run_bundle(
    student, options: dict[str, Any], data, val_data, run_dir: Path, training: dict, console: Console
) -> dict[str, Any]:
    """Write `run_dir/bundle` (int8 calibrated on training samples, parity on held-out ones); its summary."""
    from compress.bundle import export_bundle

    calibration_count = options["calibration_count"] if options["quantize"] == "int8" else 0
    if val_data:
        calibration = spread_samples(data, calibration_count, "training data (calibration)") if calibration_count else None
        parity = spread_samples(val_data, options["parity_count"], "validation data (parity)")
    else:
        # No held-out pairs: parity on training pairs from the end of the data, calibration on the others.
        pool = spread_samples(data, calibration_count + options["parity_count"], "training data (calibration and parity)")
        parity = pool[-options["parity_count"] :]
        calibration = (pool[: -options["parity_count"]] or pool) if calibration_count else None
    bundle = export_bundle(
        student,
        run_dir / BUNDLE_DIR,
        targets=options["targets"],
        quantize=options["quantize"],
        label_sets=options["labels"],
        calibration_samples=calibration,
        parity_samples=parity,
        parity_count=options["parity_count"],
        zero_shot_count=options["zero_shot_count"],
        workers=options.get("workers"),
        logit_scale=training.get("logit_scale"),
        source=str(run_dir / STUDENT_DIR),
        overwrite=True,
        console=console,
    )
    return {
        "folder": str(bundle.folder),
        "passed": bundle.passed,
        "checks": bundle.data["checks"],
        "parity_data": "validation data" if val_data else "training pairs that calibration does not use",
    }
