"""The dc_clip recipe's stages: records in stages.json, --resume skipping finished stages, --stages subsets,
and a changed config refused on reuse of a run folder."""

from __future__ import annotations

import json

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

from compress.cli import main
from compress.distill import checkpoint as ckpt


def run_cli(tmp_path, config, *extra) -> int:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return main(["recipe", "dc_clip", "--config", str(path), *extra])


def test_resume_after_a_crash_in_evaluation_skips_training(tmp_path, monkeypatch, capsys):
    training_steps = count_training_steps(monkeypatch)
    config = tiny_config(tmp_path, TINY_TEACHER)
    run_dir = tmp_path / "runs" / "tiny"
    crash_once(monkeypatch, "evaluate_models")
    with pytest.raises(Crash):
        run_recipe(tmp_path, config)
    records = stage_records(run_dir)
    assert {s: r["status"] for s, r in records.items()} == {
        "tokenizer": "finished",
        "distill": "finished",
        "align": "finished",
        "eval": "running",
    }
    assert training_steps.count("distill") == 3 and training_steps.count("align") == 2
    assert records["align"]["outputs"]["global_step"] == 5
    checkpoints = [p.name for p in ckpt.list_checkpoints(run_dir / "checkpoints")]

    # A changed config is refused, naming every key that differs.
    changed = json.loads(json.dumps(config))
    changed["distill"]["lr"]["align"] = 1e-3
    changed["eval"]["demo_count"] = 12
    assert run_cli(tmp_path, changed, "--resume") == 2
    error = capsys.readouterr().err
    assert "this run was started with another config" in error
    assert "distill.lr.align: 0.0005 -> 0.001" in error and "eval.demo_count: 16 -> 12" in error

    report = run_recipe(tmp_path, config, "--resume")

    assert len(training_steps) == 5  # nothing trained again
    after = stage_records(run_dir)
    assert {s: r["runs"] for s, r in after.items()} == {"tokenizer": 1, "distill": 1, "align": 1, "eval": 2}
    assert all(r["status"] == "finished" and r["seconds"] >= 0 for r in after.values())
    assert [p.name for p in ckpt.list_checkpoints(run_dir / "checkpoints")] == checkpoints
    assert report["global_step"] == 5 and [e["global_step"] for e in report["loss_log"]] == [1, 2, 3, 4, 5]
    assert 0.0 <= report["zero_shot_top1"]["student"]["demo-color"]["zh"] <= 1.0
    assert report["recipe_stages"]["eval"]["runs"] == 2
    assert "stage distill: finished earlier, skipped" in capsys.readouterr().out


def test_a_stage_subset_reuses_the_run_folder_and_reruns_only_those_stages(tmp_path, monkeypatch, capsys):
    training_steps = count_training_steps(monkeypatch)
    config = tiny_config(tmp_path, TINY_TEACHER)
    run_dir = tmp_path / "runs" / "tiny"
    first = run_recipe(tmp_path, config)
    first_align = [e for e in first["loss_log"] if e["stage"] == "align"]
    del training_steps[:]

    report = run_recipe(tmp_path, config, "--stages", "align,eval")

    # Stage 2 again, from the checkpoint stage 1 ended at: the same steps and losses, stage 1 untouched.
    assert training_steps == ["align", "align"]
    assert [e for e in report["loss_log"] if e["stage"] == "align"] == first_align
    records = stage_records(run_dir)
    assert {s: r["runs"] for s, r in records.items()} == {"tokenizer": 1, "distill": 1, "align": 2, "eval": 2}
    assert records["distill"]["outputs"]["checkpoint"] == str(run_dir / "stage1_checkpoint")

    assert run_cli(tmp_path, config, "--stages", "eval,deploy") == 2
    assert (
        "--stages: unknown stage(s) deploy; stages: search, tokenizer, cache, distill, align, eval, export, bundle_eval"
        in capsys.readouterr().err
    )


def test_a_subset_needing_an_earlier_stage_names_it(tmp_path, capsys):
    config = tiny_config(tmp_path, TINY_TEACHER)
    assert run_cli(tmp_path, config, "--stages", "distill") == 2
    assert "no student tokenizer (tokenizer.model); run the tokenizer stage first" in capsys.readouterr().err
