"""The dc_clip recipe end to end on tiny configurations: demo teacher, tiny AltCLIP, open_clip + M-CLIP."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from compress.cli import main
from tiny_models import save_tiny_altclip, save_tiny_mclip, save_tiny_open_clip

TINY_TEACHER = {"name": "demo", "steps": 4, "batch_size": 16, "width": 8, "text_width": 32,
                "text_layers": 1, "text_heads": 2, "embed_dim": 32}


def tiny_config(tmp_path, teacher) -> dict:
    return {
        "name": "tiny",
        "runs_dir": str(tmp_path / "runs"),
        "teacher": teacher,
        "data": {"name": "demo", "location": "train", "size": 32},
        "val_data": {"name": "demo", "location": "val", "size": 8},
        "tokenizer": {"vocab_size": 1000, "model_type": "unigram"},
        "student": {"family": "bilingual", "embed_dim": 24,
                    "text": {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16}},
        "distill": {"stage1_loss": "smooth_l1", "stage2_losses": {"infonce": 1.0, "feature": 1.0},
                    "lr": {"distill": 2e-3, "align": 5e-4}, "batch_size": 8,
                    "steps": {"distill": 3, "align": 2}, "checkpoint_every": 2},
        "eval": {"languages": ["en", "zh"], "demo_tasks": ["color"], "demo_count": 16},
    }


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_recipe(tmp_path, config, *extra) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert main(["recipe", "dc_clip", "--config", str(path), *extra]) == 0
    run_dir = tmp_path / "runs" / config["name"]
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def check_report(report: dict, run_dir) -> None:
    scores = report["zero_shot_top1"]
    for model in ("teacher", "student"):
        for lang in ("en", "zh"):
            assert 0.0 <= scores[model]["demo-color"][lang] <= 1.0
    assert (run_dir / "student" / "student.json").is_file()
    assert (run_dir / "eval" / "eval.json").is_file()
    assert (run_dir / "loss_curves.png").is_file()


def test_dc_clip_with_the_demo_teacher(tmp_path):
    report = run_recipe(tmp_path, tiny_config(tmp_path, TINY_TEACHER))
    check_report(report, tmp_path / "runs" / "tiny")
    assert report["zero_shot_top1"]["teacher"]["demo-color"].keys() == {"en", "zh"}


def test_dc_clip_with_a_local_altclip_folder(tmp_path):
    folder = save_tiny_altclip(tmp_path / "altclip")
    config = tiny_config(tmp_path, "demo")
    report = run_recipe(tmp_path, config, "--teacher", f"altclip:{folder}")
    check_report(report, tmp_path / "runs" / "tiny")


def test_dc_clip_with_open_clip_image_and_mclip_text_teachers(tmp_path):
    clip = save_tiny_open_clip(tmp_path / "clip")
    mclip = save_tiny_mclip(tmp_path / "mclip")
    config = tiny_config(tmp_path, "demo")
    report = run_recipe(tmp_path, config, "--teacher", f"{{image: 'open-clip:{clip}', text: 'mclip:{mclip}'}}")
    check_report(report, tmp_path / "runs" / "tiny")
