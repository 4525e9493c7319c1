"""The dc_clip recipe on tiny settings: the config, the cache isolation, and running it through the command line."""

from __future__ import annotations

import json

import pytest
import yaml

import compress.recipes.dc_clip as dc_clip
from compress.cli import main
from compress.distill.trainer import Distiller

TINY_TEACHER = {
    "name": "demo",
    "steps": 4,
    "batch_size": 16,
    "width": 8,
    "text_width": 32,
    "text_layers": 1,
    "text_heads": 2,
    "embed_dim": 32,
}


def tiny_config(tmp_path, teacher) -> dict:
    return {
        "name": "tiny",
        "runs_dir": str(tmp_path / "runs"),
        "teacher": teacher,
        "data": {"name": "demo", "location": "train", "size": 32},
        "val_data": {"name": "demo", "location": "val", "size": 8},
        "tokenizer": {"vocab_size": 1000, "model_type": "unigram"},
        "student": {
            "family": "bilingual",
            "embed_dim": 24,
            "text": {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16},
        },
        "distill": {
            "stage1_loss": "smooth_l1",
            "stage2_losses": {"infonce": 1.0, "feature": 1.0},
            "lr": {"distill": 2e-3, "align": 5e-4},
            "batch_size": 8,
            "steps": {"distill": 3, "align": 2},
            "checkpoint_every": 2,
        },
        "eval": {"languages": ["en", "zh"], "demo_tasks": ["color"], "demo_count": 16, "datasets": []},
    }


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_recipe(tmp_path, config, *extra) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert main(["recipe", "dc_clip", "--config", str(path), *extra]) == 0
    run_dir = tmp_path / "runs" / config["name"]
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


class Crash(Exception):
    """A machine going down in the middle of a stage."""


def crash_once(monkeypatch, name: str) -> None:
    """Make `dc_clip.<name>` raise Crash on its first call, then behave as before."""
    real = getattr(dc_clip, name)
    calls = []

    def first_call_crashes(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Crash(f"killed inside {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(dc_clip, name, first_call_crashes)


def count_training_steps(monkeypatch) -> list[str]:
    """The stage of every optimizer step the Distiller takes from now on (across every fit in this test)."""
    steps = []
    real = Distiller._step

    def counted(self, *args, **kwargs):
        steps.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Distiller, "_step", counted)
    return steps


def stage_records(run_dir) -> dict:
    return json.loads((run_dir / "stages.json").read_text(encoding="utf-8"))["stages"]
