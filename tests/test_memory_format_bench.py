"""bench/memory_format.py on a tiny image tower: both layouts timed every round, the same outputs, bad options refused."""

from __future__ import annotations

import json

import pytest
from script_modules import load_script

TINY = {"family": "bilingual", "image": {"model": "mobilevitv2_050", "image_size": 64}}


bench = load_script("bench/memory_format.py", "bench_memory_format")


def test_both_layouts_are_timed_in_every_counted_round_and_compute_the_same_outputs():
    row = bench.measure(TINY, batch_size=2, steps=1, rounds=3, warmup=1)
    assert row["batch_size"] == 2 and row["image_size"] == 64
    assert {name: len(values) for name, values in row["rounds_ms"].items()} == {"NCHW": 3, "channels-last": 3}
    assert row["ratio"] == pytest.approx(row["ms_per_step"]["channels-last"] / row["ms_per_step"]["NCHW"])
    assert row["max_abs_diff"] < 1e-4


def test_the_json_report_holds_every_batch_size(tmp_path, capsys):
    out = tmp_path / "report.json"
    options = ["--student", json.dumps(TINY), "--batch-sizes", "1,2", "--steps", "1", "--rounds", "1", "--warmup", "0"]
    assert bench.main([*options, "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [row["batch_size"] for row in report["rows"]] == [1, 2]
    assert "channels-last ms/step" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options", [["--batch-sizes", "0"], ["--batch-sizes", "a"], ["--steps", "0"], ["--threads", "0"], ["--student", "{not json"]]
)
def test_bad_options_are_refused(options):
    with pytest.raises(SystemExit) as exc:
        bench.main(options)
    assert exc.value.code == 2
