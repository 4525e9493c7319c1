"""The built-in demo teacher: a small bilingual CLIP trained from scratch on the demo world.

The first `load_demo_teacher()` trains it (a few minutes on two CPU cores) and caches it under
`compress.paths.cache_dir() / "teachers" / "demo-<config hash>"` (safetensors weights and a JSON
config, each written atomically); later loads read the cache. It is then a frozen teacher like
any other: `encode_images(list[PIL])` and `encode_texts(list[str], lang)` give L2-normalised
float32 embeddings in English and Chinese.

    python -m teachers.demo            # train or load, then print zero-shot accuracy on the demo tasks
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file

from compress.demo_world import DEMO_WORLD_VERSION, alphabet
from compress.device import resolve_device
from compress.errors import CompressError
from compress.files import file_sha256, save_tensors_atomically, write_json_atomically
from compress.paths import cache_dir
from teachers.base import CheckpointTeacher
from teachers.demo_model import CharTokenizer, DemoCLIP, ImagePreprocess

TEACHER_FORMAT = "compress-demo-teacher"
TEACHER_VERSION = 2  # bump when the architecture or the training recipe changes
PREPROCESS_VERSION = 1  # bump when image preprocessing or text normalisation changes
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
LANGUAGES = ("en", "zh")
ENCODE_BATCH = 256

DEFAULT_CONFIG: dict[str, Any] = {
    "image_size": 64,
    "embed_dim": 128,
    "width": 16,
    "text_width": 64,
    "text_layers": 3,
    "text_heads": 4,
    "context_length": 96,
    "steps": 400,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 0.05,
    "warmup_fraction": 0.05,
    "init_temperature": 0.07,
    "seed": 0,
    "world_seed": 0,
}
_FLOAT_KEYS = {"lr", "weight_decay", "warmup_fraction", "init_temperature"}
_MAY_BE_ZERO = {"weight_decay", "warmup_fraction", "seed", "world_seed"}


def demo_config(**overrides) -> dict[str, Any]:
    """The default config with `overrides` applied and checked."""
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise CompressError(f"unknown demo teacher option(s) {', '.join(unknown)}; options: {', '.join(DEFAULT_CONFIG)}")
    config = {**DEFAULT_CONFIG, **overrides}
    for key, value in config.items():
        kind = (int, float) if key in _FLOAT_KEYS else int
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = "a number" if key in _FLOAT_KEYS else "an integer"
            raise CompressError(f"demo teacher option {key} must be {expected}, not {value!r}")
        if value < 0 or (value == 0 and key not in _MAY_BE_ZERO):
            raise CompressError(f"demo teacher option {key} must be positive, not {value!r}")
        if key in _FLOAT_KEYS:
            config[key] = float(value)
    if config["image_size"] % 16:
        raise CompressError(f"demo teacher image_size must be a multiple of 16 (four 2x poolings), not {config['image_size']}")
    if config["text_width"] % config["text_heads"]:
        raise CompressError(
            f"demo teacher text_width {config['text_width']} is not divisible by text_heads {config['text_heads']}"
        )
    return config


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits of sha256 over the config and the versions of the world and the recipe."""
    keyed = {"config": config, "demo_world": DEMO_WORLD_VERSION, "teacher": TEACHER_VERSION, "preprocess": PREPROCESS_VERSION}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


class DemoTeacher(CheckpointTeacher):
    """The demo CLIP, frozen: serves English and Chinese text and images."""

    name = "demo"

    def __init__(self, model: DemoCLIP, tokenizer: CharTokenizer, config: dict, folder: Path, summary: dict, device: str = "cpu"):
        self.config = config
        self.tokenizer = tokenizer
        self.image_preprocess = ImagePreprocess(config["image_size"])
        self.folder = folder
        self.training_summary = summary
        self.trained_now = False
        resolved = resolve_device(device)
        super().__init__(
            model_id=f"demo-{config_hash(config)}",
            model=model.to(resolved),
            embed_dim=config["embed_dim"],
            languages=LANGUAGES,
            device=resolved,
            batch_size=ENCODE_BATCH,
            preprocess={
                "version": PREPROCESS_VERSION,
                "image": {"size": config["image_size"], "resize": "bilinear", "range": [-1.0, 1.0]},
                "text": {
                    "tokenizer": "characters, NFKC, lower case",
                    "alphabet": tokenizer.alphabet,
                    "context_length": config["context_length"],
                },
            },
        )

    @property
    def image_size(self) -> int:
        return self.config["image_size"]

    def _embed_image_batch(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.image_preprocess(images).to(self.device)
        return self.model.image_tower(pixels.contiguous(memory_format=torch.channels_last))

    def _embed_text_batch(self, texts: list[str], lang: str) -> torch.Tensor:
        return self.model.text_tower(self.tokenizer(texts).to(self.device))


def save_demo_teacher(model: DemoCLIP, tokenizer: CharTokenizer, config: dict, summary: dict, folder: Path) -> None:
    """Weights first, then the config that marks the folder complete; each file written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors_atomically(folder / WEIGHTS_FILE, model.state_dict(), metadata={"format": TEACHER_FORMAT})
    record = {
        "format": TEACHER_FORMAT,
        "teacher_version": TEACHER_VERSION,
        "demo_world_version": DEMO_WORLD_VERSION,
        "preprocess_version": PREPROCESS_VERSION,
        "config_hash": config_hash(config),
        "config": config,
        "alphabet": tokenizer.alphabet,
        "preprocessing": {
            "image_size": config["image_size"],
            "resize": "bilinear to square",
            "mean": [0.5] * 3,
            "std": [0.5] * 3,
        },
        "weights_sha256": file_sha256(folder / WEIGHTS_FILE),
        "training": summary,
    }
    write_json_atomically(folder / CONFIG_FILE, record)


def read_demo_teacher(folder: Path, device: str = "cpu") -> DemoTeacher:
    """A saved demo teacher; a missing, foreign or corrupt file is a `CompressError` naming it."""
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    try:
        record = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompressError(f"{config_path}: cannot read the demo teacher config ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != TEACHER_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise CompressError(f"{config_path}: not a demo teacher config (format {found!r})")
    if record.get("teacher_version") != TEACHER_VERSION or record.get("preprocess_version") != PREPROCESS_VERSION:
        raise CompressError(
            f"{config_path}: demo teacher version {record.get('teacher_version')}/preprocess {record.get('preprocess_version')}, "
            f"this library reads {TEACHER_VERSION}/{PREPROCESS_VERSION}"
        )
    if not weights_path.is_file():
        raise CompressError(f"{weights_path}: missing; the demo teacher folder is incomplete")
    sha = file_sha256(weights_path)
    if sha != record.get("weights_sha256"):
        recorded = str(record.get("weights_sha256"))[:12]
        raise CompressError(f"{weights_path}: sha256 {sha[:12]}... does not match {CONFIG_FILE} ({recorded}...)")
    try:
        config = demo_config(**record["config"])
        tokenizer = CharTokenizer(str(record["alphabet"]), config["context_length"])
    except (KeyError, TypeError) as exc:
        raise CompressError(f"{config_path}: missing or malformed entry {exc}") from None
    except CompressError as exc:
        raise CompressError(f"{config_path}: {exc}") from None
    model = DemoCLIP(config, tokenizer.vocab_size)
    try:
        model.load_state_dict(load_file(str(weights_path)), strict=True)
    except (SafetensorError, RuntimeError) as exc:
        raise CompressError(f"{weights_path}: weights do not fit the demo teacher config ({str(exc).splitlines()[0]})") from None
    return DemoTeacher(model, tokenizer, config, folder, record.get("training", {}), device=device)


def load_demo_teacher(
    location: str | Path | None = None, progress: bool = True, device: str = "cpu", **config_overrides
) -> DemoTeacher:
    """The demo teacher: trained on first use, then read from the cache (or from `location`).

    `location` is a folder to load a saved demo teacher from, or to train and save one into when it
    holds none. Overrides (steps, batch_size, width, ...) change the config, hence the cache entry.
    """
    requested = demo_config(**config_overrides)
    folder = Path(location).expanduser() if location else cache_dir() / "teachers" / f"demo-{config_hash(requested)}"
    if folder.exists() and not folder.is_dir():
        raise CompressError(f"{folder}: is a file; a demo teacher location is a folder")
    if (folder / CONFIG_FILE).is_file():
        teacher = read_demo_teacher(folder, device=device)
        differing = {k: v for k, v in config_overrides.items() if teacher.config.get(k) != requested[k]}
        if differing:
            saved = ", ".join(f"{k}={teacher.config.get(k)!r}" for k in differing)
            raise CompressError(f"{folder}: holds a demo teacher with {saved}, not the requested {differing}")
        return teacher
    from teachers.demo_train import train_demo_clip  # training pulls in rich and the demo renderer

    tokenizer = CharTokenizer(alphabet(), requested["context_length"])
    model, summary = train_demo_clip(requested, tokenizer, progress=progress, device=device)
    save_demo_teacher(model, tokenizer, requested, summary, folder)
    teacher = read_demo_teacher(folder, device=device)
    teacher.trained_now = True
    return teacher


def main(argv: list[str] | None = None) -> int:
    """Train (or load) the demo teacher and print its zero-shot accuracy on the demo tasks."""
    from rich.console import Console
    from rich.table import Table

    from compress.demo_world import evaluate_demo_tasks

    parser = argparse.ArgumentParser(prog="python -m teachers.demo", description=main.__doc__)
    parser.add_argument("--location", help="folder to load the teacher from or save it to (default: the cache)")
    parser.add_argument("--count", type=int, default=1000, help="test images per task")
    for key, value in DEFAULT_CONFIG.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None, help=f"default {value}")
    args = parser.parse_args(argv)
    overrides = {k: getattr(args, k) for k in DEFAULT_CONFIG if getattr(args, k) is not None}
    console = Console()
    try:
        teacher = load_demo_teacher(args.location, **overrides)
        results = evaluate_demo_tasks(teacher, count=args.count)
    except CompressError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    how = "trained now" if teacher.trained_now else "loaded"
    console.print(f"demo teacher {teacher.fingerprint}\n  folder {teacher.folder} ({how})")
    console.print(f"  training {json.dumps(teacher.training_summary)}")
    table = Table(title=f"zero-shot top-1 on the demo test split ({args.count} images per task)")
    table.add_column("task")
    for lang in LANGUAGES:
        table.add_column(lang, justify="right")
    for task in dict.fromkeys(task for task, _ in results):
        table.add_row(task, *(f"{100 * results[(task, lang)]:.1f}%" for lang in LANGUAGES))
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
