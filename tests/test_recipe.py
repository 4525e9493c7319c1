"""The dc_clip recipe end to end on tiny configurations: demo teacher, tiny AltCLIP, open_clip + M-CLIP."""

from __future__ import annotations

import pytest
import yaml
from recipe_helpers import (  # noqa: F401 (isolated_cache: a fixture)
    TINY_TEACHER,
    Crash,
    count_training_steps,
    crash_once,
    isolated_cache,
    run_recipe,
    stage_records,
    tiny_config,
)
from tiny_models import save_tiny_altclip, save_tiny_mclip, save_tiny_open_clip

from compress.cli import main


def check_report(report: dict, run_dir) -> None:
    scores = report["zero_shot_top1"]
    for model in ("teacher", "student"):
        for lang in ("en", "zh"):
            assert 0.0 <= scores[model]["demo-color"][lang] <= 1.0
    assert report["retention"].keys() == scores["student"].keys()
    for task, by_lang in report["retention"].items():
        for lang, kept in by_lang.items():
            teacher = scores["teacher"][task][lang]
            assert kept == (pytest.approx(scores["student"][task][lang] / teacher) if teacher else None)
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


def test_dc_clip_ends_with_a_bundle_for_both_targets_and_its_parity_table(tmp_path, capsys, monkeypatch):
    from compress.bundle import load_bundle

    training_steps = count_training_steps(monkeypatch)
    config = tiny_config(tmp_path, TINY_TEACHER)
    config["export"] = {
        "targets": ["executorch", "coreml"],
        "quantize": "int8",
        "labels": ["demo-color"],
        "calibration_count": 8,
        "parity_count": 4,
        "zero_shot_count": 16,
    }
    # Killed as the export starts; --resume then exports without training or evaluating again.
    crash_once(monkeypatch, "export_run_bundle")
    with pytest.raises(Crash):
        run_recipe(tmp_path, config)
    report = run_recipe(tmp_path, config, "--resume")
    assert len(training_steps) == 5
    assert {s: r["runs"] for s, r in stage_records(tmp_path / "runs" / "tiny").items()} == {
        "tokenizer": 1,
        "distill": 1,
        "align": 1,
        "eval": 1,
        "export": 2,
        "bundle_eval": 1,
    }
    # The bundle's int8 ExecuTorch models evaluated as an app runs them.
    assert 0.0 <= report["bundle_zero_shot_top1"]["demo-color"]["zh"] <= 1.0
    assert (tmp_path / "runs" / "tiny" / "eval_bundle" / "eval.json").is_file()
    bundle = load_bundle(tmp_path / "runs" / "tiny" / "bundle")  # verifies every file's sha256
    assert {(m["target"], m["precision"]) for m in bundle.models()} == {
        ("executorch", "fp32"),
        ("executorch", "int8"),
        ("coreml", "fp16"),
        ("coreml", "int8-weights"),
    }
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


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["export"].update(quantise="int8"),
            "dc_clip config: export: unknown key(s) quantise; valid keys: calibration_count, labels, parity_count, quantize",
        ),
        (lambda c: c["eval"].update(demo_cout=3), "dc_clip config: eval: unknown key(s) demo_cout; valid keys: datasets"),
        (lambda c: c.update(tokeniser={}), "dc_clip config: unknown key(s) tokeniser; valid keys: cache, data, distill"),
        (
            lambda c: c["distill"].update(learning_rate=1.0),
            "dc_clip config: distill: unknown key(s) learning_rate; valid keys: batch_size",
        ),
        (lambda c: c["tokenizer"].pop("vocab_size"), "dc_clip config: tokenizer: missing key(s) vocab_size"),
        (lambda c: c["export"].pop("zero_shot_count"), "dc_clip config: export: missing key(s) zero_shot_count"),
    ],
)
def test_an_unknown_or_missing_key_anywhere_is_one_clear_error(tmp_path, capsys, edit, message):
    config = tiny_config(tmp_path, TINY_TEACHER)
    config["export"] = {
        "targets": ["executorch"],
        "quantize": "none",
        "labels": ["demo-color"],
        "calibration_count": 8,
        "parity_count": 4,
        "zero_shot_count": 16,
    }
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
