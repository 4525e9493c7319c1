"""The DC-CLIP ablation on the demo: stage 1 only, stage 2 only, both stages, and both with QAT.

    python bench/ablation.py                                   # the shipped demo config, seeds 0,1,2
    python bench/ablation.py --seeds 0 --steps-distill 100 --steps-align 20 --eval-count 100
    python bench/ablation.py --config my_dc_clip.yaml --variants distill,both --out runs/my-ablation

Every variant uses the dc_clip recipe's demo settings (teacher, data, tokenizer, student, losses,
learning rates, batch sizes, steps) and, for one seed, the same start: the student is built once
with torch seeded by the seed, and each variant trains a copy of those weights on the same data
order (the Distiller's seed is the same seed too).

- distill: stage 1 only (feature distillation)
- align: stage 2 only (contrastive alignment), from the untrained student
- both: stage 1, then stage 2 from where stage 1 ended (what the recipe trains)
- both_qat: the same, stage 2 under int8 fake quantization (`distill.qat`)

Stage 1 is one computation in distill, both and both_qat, so it is trained once per seed and the
two-stage variants continue from its final checkpoint. Checkpoints every `--eval-every-distill` and
`--eval-every-align` steps are evaluated (zero-shot top-1 on the demo tasks, both languages) to
plot accuracy against training steps; each fit's checkpoints are deleted once evaluated.

Each finished seed is written to `--out`/seeds/seed<N>.json; a later run with the same settings
and `--out` reuses it, so a stopped run continues with the seeds it had not finished, and runs of
single seeds (e.g. in parallel) are gathered by one run that names them all (`--seeds 0,1,2`).

Writes `ablation.json` (every score of every seed and checkpoint, the means and spreads) and
`ablation.png` (zero-shot top-1 against steps for both stages) into `--out`, and prints the table:
per variant and language, the mean over seeds and the spread (population standard deviation,
and the lowest and highest seed).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from safetensors.torch import load_model

import compress
from compress import quiet
from compress.data.sources import get_source
from compress.distill import DistillConfig
from compress.distill import checkpoint as ckpt
from compress.distill.report import CHECKPOINT_DIR
from compress.eval.zeroshot import class_embeddings, image_embeddings, top_k_accuracy
from compress.files import write_json_atomically
from compress.recipes import apply_overrides, load_config
from compress.recipes.dc_clip import read_config, student_section
from compress.specs import parse_text
from students.tokenizer import train_tokenizer

VARIANTS = ("distill", "align", "both", "both_qat")
STAGE1 = "stage1"  # the run folder of a seed's shared stage-1 fit


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers, not {text!r}") from None
    if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"distinct non-negative integers, not {text!r}")
    return seeds


def parse_variants(text: str) -> list[str]:
    variants = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if not variants or unknown:
        raise argparse.ArgumentTypeError(f"any of {', '.join(VARIANTS)}, not {text!r}")
    return [v for v in VARIANTS if v in variants]


class TaskScorer:
    """Zero-shot top-1 of an encoder on the demo tasks: test pictures rendered once, scored many times."""

    def __init__(self, task_names: list[str], languages: list[str], count: int, image_size: int | None):
        tasks = {task.name: task for task in get_source("demo").zero_shot_tasks()}
        self.languages, self.count = languages, count
        self.tasks = [tasks[name] for name in task_names]
        self.samples = {task.name: task.test_samples(count, image_size=image_size) for task in self.tasks}

    @torch.no_grad()
    def __call__(self, encoder) -> dict[str, dict[str, float]]:
        """scores[task][lang] = top-1 in percent."""
        scores: dict[str, dict[str, float]] = {}
        for task in self.tasks:
            images, labels = self.samples[task.name]
            features = image_embeddings(encoder, images)
            targets = torch.tensor(labels, device=features.device)
            scores[task.name] = {}
            for lang in self.languages:
                classes = class_embeddings(encoder, task.classnames[lang], task.templates[lang], lang).to(features.device)
                scores[task.name][lang] = 100 * top_k_accuracy(features @ classes.T, targets, k=1)
        return scores


def recipe_config(args) -> dict:
    """The dc_clip demo config with the bench's step budgets and any --set overrides, checked like the recipe's."""
    overrides = list(args.overrides)
    if args.steps_distill:
        overrides.append(f"distill.steps.distill={args.steps_distill}")
    if args.steps_align:
        overrides.append(f"distill.steps.align={args.steps_align}")
    config = apply_overrides(load_config("dc_clip", args.config), overrides)
    for key in ("teacher", "data"):
        if getattr(args, key):
            config[key] = parse_text(getattr(args, key), f"--{key}")
    return read_config(config)


class Ablation:
    """The variants of one config, seed by seed, with the evaluation of every kept checkpoint."""

    def __init__(self, config: dict, args, console: Console):
        self.config, self.args, self.console = config, args, console
        self.out = Path(args.out)
        self.teacher = compress.load_teacher(config["teacher"])
        self.data = compress.open_data(config["data"])
        self.val_data = compress.open_data(config["val_data"]) if config.get("val_data") else None
        ev = config["eval"]
        count = args.eval_count or ev["demo_count"]
        self.scorer = TaskScorer(list(ev["demo_tasks"]), list(ev["languages"]), count, ev.get("demo_image_size"))
        self.tokenizer = self.out / "tokenizer.model"
        tok = config["tokenizer"]
        train_tokenizer(
            [caption for caption, _ in self.data.captions()],
            self.tokenizer,
            vocab_size=tok["vocab_size"],
            model_type=tok["model_type"],
        )
        distill = dict(config["distill"])
        self.steps = {stage: DistillConfig(**distill).steps_for(stage) for stage in ("distill", "align")}
        if any(steps is None for steps in self.steps.values()):
            raise SystemExit("the ablation needs step budgets for both stages (distill.steps), not epochs")

    def student(self, seed: int):
        torch.manual_seed(seed)
        config = {**student_section(self.config), "tokenizer": str(self.tokenizer)}
        config.setdefault("embed_dim", int(self.teacher.embed_dim))
        return compress.build_student(config)

    def distiller(self, student, run_dir: Path, seed: int, every: int, qat: bool = False):
        settings = {**self.config["distill"], "seed": seed, "qat": qat, "checkpoint_every": every, "keep_checkpoints": 10**6}
        return compress.Distiller(
            self.teacher, student, data=self.data, val_data=self.val_data, run_dir=run_dir, config=DistillConfig(**settings)
        )

    def curve(self, distiller, start: dict, offset: int = 0) -> list[dict]:
        """Zero-shot top-1 at step 0 (`start`) and at each checkpoint the fit left, counted in steps of
        the stage (`offset`: the global steps before it)."""
        points = [{"step": 0, "scores": start}]
        final = {k: v.detach().clone() for k, v in distiller.trainable.state_dict().items()}
        for path in ckpt.list_checkpoints(distiller.checkpoint_dir):
            state = json.loads((path / ckpt.STATE_FILE).read_text(encoding="utf-8"))["train"]
            step = state["global_step"] - offset
            if step <= 0 or (points and step == points[-1]["step"]):
                continue
            load_model(distiller.trainable, str(path / ckpt.MODEL_FILE), strict=True)
            distiller.trainable.eval()
            points.append({"step": step, "scores": self.scorer(distiller.student)})
        distiller.trainable.load_state_dict(final)
        distiller.trainable.eval()
        return points

    def run_seed(self, seed: int, variants: list[str]) -> dict[str, dict]:
        """{variant: {"final": scores, "curve": [...], "seconds": ...}} for one seed."""
        folder = self.out / "runs" / f"seed{seed}"
        initial = self.student(seed)
        start = self.scorer(initial)
        results: dict[str, dict] = {}
        if {"distill", "both", "both_qat"} & set(variants):
            began = time.perf_counter()
            stage1 = self.distiller(copy.deepcopy(initial), folder / STAGE1, seed, self.args.eval_every_distill)
            stage1.fit("distill")
            kept = folder / "stage1_end"
            if kept.exists():
                shutil.rmtree(kept)
            shutil.copytree(ckpt.latest_checkpoint(stage1.checkpoint_dir), kept)
            stage1_curve = self.curve(stage1, start)
            results["distill"] = {
                "final": stage1_curve[-1]["scores"],
                "curve": stage1_curve,
                "seconds": time.perf_counter() - began,
            }
            ckpt.remove_checkpoints(stage1.checkpoint_dir)
            for variant in ("both", "both_qat"):
                if variant not in variants:
                    continue
                began = time.perf_counter()
                ckpt.remove_checkpoints(folder / variant / CHECKPOINT_DIR)
                run = self.distiller(
                    copy.deepcopy(initial), folder / variant, seed, self.args.eval_every_align, qat=variant == "both_qat"
                )
                run.fit("align", resume=True, checkpoint=kept)
                points = self.curve(run, results["distill"]["final"], offset=self.steps["distill"])
                results[variant] = {"final": points[-1]["scores"], "curve": points, "seconds": time.perf_counter() - began}
                ckpt.remove_checkpoints(run.checkpoint_dir)
            shutil.rmtree(kept)
        if "align" in variants:
            began = time.perf_counter()
            run = self.distiller(copy.deepcopy(initial), folder / "align", seed, self.args.eval_every_align)
            run.fit("align")
            points = self.curve(run, start)
            results["align"] = {"final": points[-1]["scores"], "curve": points, "seconds": time.perf_counter() - began}
            ckpt.remove_checkpoints(run.checkpoint_dir)
        return {variant: results[variant] for variant in variants}


def run_settings(config: dict, args) -> dict:
    """What a seed's results depend on besides the seed (a seed file with other settings is not reused)."""
    return json.loads(
        json.dumps(
            {
                "config": config,
                "eval_count": args.eval_count,
                "eval_every_distill": args.eval_every_distill,
                "eval_every_align": args.eval_every_align,
                "threads": torch.get_num_threads(),
            },
            sort_keys=True,
            default=str,
        )
    )


def seed_file(out: Path, seed: int) -> Path:
    return out / "seeds" / f"seed{seed}.json"


def finished_seed(out: Path, seed: int, settings: dict, variants: list[str]) -> dict | None:
    """The results of `seed` written by an earlier run with the same settings and every requested variant, if any.

    So a stopped ablation continues with the seeds it had not finished, and several runs with
    different --seeds and the same --out can be gathered by one run naming them all."""
    path = seed_file(out, seed)
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved.get("settings") != settings or not set(variants) <= set(saved.get("variants", ())):
        return None
    return {variant: saved["results"][variant] for variant in variants}


def spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def summarise(per_seed: dict[int, dict[str, dict]], teacher: dict, variants: list[str], tasks: list[str], languages: list[str]):
    """Mean and spread over seeds of each variant's final scores, its retention of the teacher, and
    the paired effect of stage 2 (both minus distill, per seed)."""
    summary: dict[str, dict] = {}
    for variant in variants:
        summary[variant] = {}
        for task in tasks:
            summary[variant][task] = {}
            for lang in languages:
                values = [per_seed[seed][variant]["final"][task][lang] for seed in per_seed]
                entry = spread(values)
                if teacher[task][lang]:
                    entry["retention"] = spread([value / teacher[task][lang] for value in values])
                summary[variant][task][lang] = entry
    effects: dict[str, dict] = {}
    for variant in ("both", "both_qat"):
        if variant in variants and "distill" in variants:
            effects[f"{variant} - distill"] = {
                lang: spread(
                    [
                        statistics.fmean(
                            per_seed[s][variant]["final"][t][lang] - per_seed[s]["distill"]["final"][t][lang] for t in tasks
                        )
                        for s in per_seed
                    ]
                )
                for lang in languages
            }
    return summary, effects


def results_table(summary: dict, teacher: dict, tasks: list[str], languages: list[str], seeds: list[int]) -> Table:
    table = Table(title=f"zero-shot top-1 (%) on the demo, mean ± std over seeds {','.join(map(str, seeds))} [lowest..highest]")
    table.add_column("variant")
    table.add_column("lang")
    for task in tasks:
        table.add_column(task, justify="right")
    for lang in languages:
        table.add_row("teacher", lang, *(f"{teacher[task][lang]:.1f}" for task in tasks))
    for variant, by_task in summary.items():
        for lang in languages:
            cells = []
            for task in tasks:
                entry = by_task[task][lang]
                cells.append(f"{entry['mean']:.1f} ± {entry['std']:.1f} [{entry['min']:.1f}..{entry['max']:.1f}]")
            table.add_row(variant, lang, *cells)
    return table


def plot_curves(per_seed: dict[int, dict[str, dict]], variants: list[str], tasks: list[str], languages: list[str], path: Path):
    """Zero-shot top-1 against steps: stage 1 (top row) and stage 2 (bottom row), one column per task;
    lines are the mean over seeds, bands the lowest to highest seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(tasks), figsize=(4.2 * len(tasks), 7), squeeze=False)
    styles = {"en": "-", "zh": "--"}
    colours = {"distill": "tab:blue", "align": "tab:orange", "both": "tab:green", "both_qat": "tab:red"}
    for row, stage_variants in enumerate((["distill"], ["align", "both", "both_qat"])):
        for column, task in enumerate(tasks):
            ax = axes[row][column]
            for variant in (v for v in stage_variants if v in variants):
                steps = [point["step"] for point in per_seed[next(iter(per_seed))][variant]["curve"]]
                for lang in languages:
                    rows = [[p["scores"][task][lang] for p in per_seed[s][variant]["curve"]] for s in per_seed]
                    count = min(len(r) for r in rows)
                    mean = [statistics.fmean(r[i] for r in rows) for i in range(count)]
                    ax.plot(steps[:count], mean, styles.get(lang, ":"), color=colours[variant], label=f"{variant} {lang}")
                    low = [min(r[i] for r in rows) for i in range(count)]
                    high = [max(r[i] for r in rows) for i in range(count)]
                    ax.fill_between(steps[:count], low, high, color=colours[variant], alpha=0.12)
            ax.set_title(f"{task}: stage {'1 (distill)' if row == 0 else '2 (align)'}")
            ax.set_xlabel("steps of the stage" if row == 0 else "stage-2 steps (both: after stage 1)")
            ax.set_ylabel("zero-shot top-1 (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a dc_clip YAML config replacing the shipped demo one")
    parser.add_argument("--seeds", default="0,1,2", type=parse_seeds, help="comma-separated seeds (0,1,2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), type=parse_variants, help=f"any of {','.join(VARIANTS)}")
    parser.add_argument("--steps-distill", type=int, help="stage-1 steps (default: the shipped config's)")
    parser.add_argument("--steps-align", type=int, help="stage-2 steps (default: the shipped config's)")
    parser.add_argument("--eval-count", type=int, help="test images per demo task (default: the config's eval.demo_count)")
    parser.add_argument("--eval-every-distill", type=int, default=50, help="evaluate stage 1 every N steps (50)")
    parser.add_argument("--eval-every-align", type=int, default=10, help="evaluate stage 2 every N steps (10)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--teacher", help="teacher spec (default: the config's, the demo teacher)")
    parser.add_argument("--data", help="training data spec (default: the config's, demo:train)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="any recipe setting (repeatable)"
    )
    parser.add_argument("--out", default="runs/ablation", help="folder for ablation.json, ablation.png and the runs")
    args = parser.parse_args(argv)
    for name in ("steps_distill", "steps_align", "eval_count", "eval_every_distill", "eval_every_align", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, not {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = recipe_config(args)
    ablation = Ablation(config, args, console)
    tasks, languages = list(config["eval"]["demo_tasks"]), list(config["eval"]["languages"])
    teacher = ablation.scorer(ablation.teacher)
    settings = run_settings(config, args)
    per_seed = {}
    for seed in args.seeds:
        console.rule(f"seed {seed}")
        per_seed[seed] = finished_seed(out, seed, settings, args.variants)
        if per_seed[seed] is not None:
            console.print(f"seed {seed}: results of an earlier run with the same settings, {seed_file(out, seed)}")
            continue
        per_seed[seed] = ablation.run_seed(seed, args.variants)
        write_json_atomically(seed_file(out, seed), {"settings": settings, "variants": args.variants, "results": per_seed[seed]})
    summary, effects = summarise(per_seed, teacher, args.variants, tasks, languages)
    console.print(results_table(summary, teacher, tasks, languages, args.seeds))
    for name, by_lang in effects.items():
        parts = [f"{lang} {e['mean']:+.1f} ± {e['std']:.1f} [{e['min']:+.1f}..{e['max']:+.1f}]" for lang, e in by_lang.items()]
        console.print(f"{name}, points of top-1 averaged over the tasks, per seed: " + ", ".join(parts))
    plot = out / "ablation.png"
    plot_curves(per_seed, args.variants, tasks, languages, plot)
    seconds = time.perf_counter() - started
    report = {
        "seeds": args.seeds,
        "variants": args.variants,
        "steps": ablation.steps,
        "eval_count": ablation.scorer.count,
        "threads": torch.get_num_threads(),
        "teacher": teacher,
        "summary": summary,
        "stage2_effect": effects,
        "per_seed": {str(seed): runs for seed, runs in per_seed.items()},
        "plot": str(plot),
        "seconds": seconds,
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    console.print(f"{out / 'ablation.json'}, {plot}; {seconds:.0f} s, {torch.get_num_threads()} torch thread(s)")
    return 0


if __name__ == "__main__":
    with quiet.installed():  # compress's own lines only; COMPRESS_VERBOSE=1 shows every third-party one
        raise SystemExit(main())
