"""bench/ablation.py on a tiny config: its options, the files it writes, the table, the shared start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from recipe_helpers import TINY_TEACHER, isolated_cache, tiny_config  # noqa: F401 (isolated_cache: a fixture)
from script_modules import load_script

ablation = load_script("bench/ablation.py", "bench_ablation")


def run(tmp_path, *options) -> dict:
    config = tiny_config(tmp_path, TINY_TEACHER)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"
    common = ["--config", str(path), "--steps-distill", "2", "--steps-align", "2", "--eval-count", "8", "--out", str(out)]
    assert ablation.main([*common, "--eval-every-distill", "1", "--eval-every-align", "1", *options]) == 0
    return json.loads((out / "ablation.json").read_text(encoding="utf-8"))


def test_every_variant_for_two_seeds_writes_the_table_json_and_plot(tmp_path, capsys):
    report = run(tmp_path, "--seeds", "0,1")
    printed = capsys.readouterr().out
    assert report["seeds"] == [0, 1] and report["variants"] == list(ablation.VARIANTS)
    assert report["steps"] == {"distill": 2, "align": 2} and report["eval_count"] == 8
    table = printed[printed.index("zero-shot top-1 (%) on the demo") :]
    table_rows = [line for line in table.splitlines() if line.startswith("│")]
    for variant in ("teacher", *ablation.VARIANTS):
        assert [row.split("│")[2].strip() for row in table_rows if row.split("│")[1].strip() == variant] == ["en", "zh"]
    assert "both - distill" in printed and "both_qat - distill" in printed
    for variant in ablation.VARIANTS:
        entry = report["summary"][variant]["color"]["en"]
        assert entry["min"] <= entry["mean"] <= entry["max"]
        values = [report["per_seed"][seed][variant]["final"]["color"]["en"] for seed in ("0", "1")]
        assert entry["mean"] == pytest.approx(sum(values) / 2)
    assert set(report["stage2_effect"]) == {"both - distill", "both_qat - distill"}
    plot = Path(report["plot"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_hold_a_point_per_checkpoint_and_every_variant_shares_the_start(tmp_path):
    report = run(tmp_path, "--seeds", "3")
    runs = report["per_seed"]["3"]
    for variant in ablation.VARIANTS:
        assert [point["step"] for point in runs[variant]["curve"]] == [0, 1, 2]
        assert runs[variant]["curve"][-1]["scores"] == runs[variant]["final"]
    # Stage 1 only and stage 2 only start from the same untrained student ...
    assert runs["distill"]["curve"][0]["scores"] == runs["align"]["curve"][0]["scores"]
    # ... and the two-stage variants start stage 2 where stage 1 ended.
    for variant in ("both", "both_qat"):
        assert runs[variant]["curve"][0]["scores"] == runs["distill"]["final"]
    # Evaluated checkpoints are not left on disk.
    assert not list((tmp_path / "out" / "runs").rglob("step-*"))


def test_a_subset_of_variants_trains_only_what_it_needs(tmp_path):
    report = run(tmp_path, "--seeds", "0", "--variants", "align")
    assert report["variants"] == ["align"] and list(report["summary"]) == ["align"]
    assert report["stage2_effect"] == {}
    assert not (tmp_path / "out" / "runs" / "seed0" / ablation.STAGE1).exists()


@pytest.mark.parametrize(
    "options",
    [["--seeds", "0,0"], ["--seeds", "a"], ["--variants", "distill,stage3"], ["--steps-distill", "0"], ["--eval-count", "-1"]],
)
def test_bad_options_are_refused_before_any_training(tmp_path, options, capsys):
    with pytest.raises(SystemExit) as raised:
        ablation.main([*options, "--out", str(tmp_path / "out")])
    assert raised.value.code != 0
    assert not (tmp_path / "out" / "ablation.json").exists()


def test_finished_seeds_are_reused_by_a_run_with_the_same_settings_only(tmp_path, monkeypatch):
    first = run(tmp_path, "--seeds", "0", "--variants", "distill,both")
    assert (tmp_path / "out" / "seeds" / "seed0.json").is_file()
    trained = []
    original = ablation.Ablation.run_seed
    monkeypatch.setattr(
        ablation.Ablation, "run_seed", lambda self, seed, variants: trained.append(seed) or original(self, seed, variants)
    )
    # Seed 0 comes from its file (a subset of its variants too); seed 1 is trained.
    gathered = run(tmp_path, "--seeds", "0,1", "--variants", "both")
    assert trained == [1]
    assert gathered["per_seed"]["0"]["both"] == first["per_seed"]["0"]["both"]
    # Other settings (here the evaluation's image count) train again.
    run(tmp_path, "--seeds", "0", "--variants", "both", "--eval-count", "4")
    assert trained == [1, 0]
