"""The dc_clip recipe end to end on tiny configurations: demo teacher, tiny AltCLIP, open_clip + M-CLIP."""

from __future__ import annotations

import json

import pytest
import yaml
from tiny_models import save_tiny_altclip, save_tiny_mclip, save_tiny_open_clip

from compress.cli import main

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


def test_the_student_embeds_into_the_teachers_space_unless_told_otherwise(tmp_path):
    config = tiny_config(tmp_path, TINY_TEACHER)
    del config["student"]["embed_dim"]
    report = run_recipe(tmp_path, config)
    assert report["student"]["embed_dim"] == TINY_TEACHER["embed_dim"]
    assert report["adapters"] == {"image": {"kind": "identity"}, "text": {"kind": "identity"}}


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


def test_dc_clip_ends_with_a_bundle_for_both_targets_and_its_parity_table(tmp_path, capsys):
    from compress.bundle import load_bundle

    config = tiny_config(tmp_path, TINY_TEACHER)
    config["export"] = {"targets": ["executorch", "coreml"], "quantize": "int8", "labels": ["demo-color"],
                        "calibration_count": 8, "parity_count": 4, "zero_shot_count": 16}
    report = run_recipe(tmp_path, config)
    bundle = load_bundle(tmp_path / "runs" / "tiny" / "bundle")  # verifies every file's sha256
    assert {(m["target"], m["precision"]) for m in bundle.models()} == {
        ("executorch", "fp32"), ("executorch", "int8"), ("coreml", "fp16"), ("coreml", "int8-weights")}
    assert bundle.manifest["logit_scale"] == pytest.approx(report["logit_scale"])
    assert report["bundle"]["folder"] == str(tmp_path / "runs" / "tiny" / "bundle")
    checks = {check["name"]: check for check in report["bundle"]["checks"]}
    for tower in ("image", "text"):
        assert checks[f"executorch {tower} fp32 max abs error vs eager"]["passed"]
        assert f"executorch {tower} int8 mean cosine vs fp32" in checks
    output = capsys.readouterr().out
    assert "bundle: size and parity" in output and "bundle: zero-shot top-1" in output


def run_failing_recipe(tmp_path, config, capsys) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert main(["recipe", "dc_clip", "--config", str(path)]) != 0
    return capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["export"].update(quantise="int8"),
     "dc_clip config: export: unknown key(s) quantise; valid keys: calibration_count, labels, parity_count, quantize"),
    (lambda c: c["eval"].update(demo_cout=3), "dc_clip config: eval: unknown key(s) demo_cout; valid keys: datasets"),
    (lambda c: c.update(tokeniser={}), "dc_clip config: unknown key(s) tokeniser; valid keys: data, distill"),
    (lambda c: c["distill"].update(learning_rate=1.0), "dc_clip config: distill: unknown key(s) learning_rate; "
                                                       "valid keys: batch_size"),
    (lambda c: c["tokenizer"].pop("vocab_size"), "dc_clip config: tokenizer: missing key(s) vocab_size"),
    (lambda c: c["export"].pop("zero_shot_count"), "dc_clip config: export: missing key(s) zero_shot_count"),
])
def test_an_unknown_or_missing_key_anywhere_is_one_clear_error(tmp_path, capsys, edit, message):
    config = tiny_config(tmp_path, TINY_TEACHER)
    config["export"] = {"targets": ["executorch"], "quantize": "none", "labels": ["demo-color"],
                        "calibration_count": 8, "parity_count": 4, "zero_shot_count": 16}
    edit(config)
    message = message.replace("dc_clip config", f"dc_clip config ({tmp_path / 'config.yaml'})")
    assert message in run_failing_recipe(tmp_path, config, capsys)
    assert not (tmp_path / "runs" / "tiny" / "checkpoints").exists()  # refused before any training


def test_the_shipped_config_is_complete_and_read_strictly():
    from compress.recipes import load_config
    from compress.recipes.dc_clip import EXPORT, read_config

    config = read_config(load_config("dc_clip"))
    assert set(config["export"]) == set(EXPORT.keys)
    assert config["tokenizer"]["vocab_size"] == 2000 and config["export"]["calibration_count"] == 256
    assert config["export"]["zero_shot_count"] == 500
