"""Every bench script runs as the README documents it (`python bench/NAME.py ...` from the repository
root), on its smallest settings, so a benchmark cannot silently break."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from seen_output import SEEN_FRAGMENTS

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))

# The recipe-driven scripts' smallest student (a `--set` override of the dc_clip config).
TINY_RECIPE_STUDENT = [
    "--set",
    "student={family: bilingual, image: "
    "{model: mobilevitv2_050, image_size: 64}, text: {layers: 1, hidden: 32, heads: 2, ffn: 64, max_length: 16}}",
]

# The smallest settings of each script, and a file it must write (checked for content).
SMOKE = {
    "ablation": (
        [
            "--teacher",
            '{"name": "demo", "steps": 1, "batch_size": 8}',
            "--data",
            '{"name": "demo", "location": "train", "size": 16}',
            "--seeds",
            "0",
            "--steps-distill",
            "1",
            "--steps-align",
            "1",
            "--eval-count",
            "4",
            "--threads",
            "1",
            "--set",
            "tokenizer.vocab_size=1000",
            "--set",
            "distill.batch_size=4",
            "--set",
            "val_data={name: demo, location: val, size: 4}",
            *TINY_RECIPE_STUDENT,
            "--out",
            "{out}",
        ],
        "ablation.json",
    ),
    "distiller_overhead": (
        [
            "--steps",
            "1",
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--warmup-steps",
            "1",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--json",
            "{out}/overhead.json",
        ],
        "overhead.json",
    ),
    "export": (
        ["--skip-coreml", "--calibration", "2", "--samples", "2", "--iterations", "1", "--json", "{out}/export.json"],
        "export.json",
    ),
    "memory_format": (
        [
            "--student",
            '{"family": "bilingual", "image": {"model": "mobilevitv2_050", "image_size": 64}}',
            "--batch-sizes",
            "2",
            "--steps",
            "1",
            "--rounds",
            "2",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--json",
            "{out}/memory_format.json",
        ],
        "memory_format.json",
    ),
    "qat": (
        [
            "--teacher",
            '{"name": "demo", "steps": 1, "batch_size": 8}',
            "--data",
            '{"name": "demo", "location": "train", "size": 32}',
            "--distill-steps",
            "2",
            "--align-steps",
            "2",
            "--demo-count",
            "8",
            "--calibration-count",
            "4",
            "--threads",
            "1",
            "--set",
            "tokenizer.vocab_size=1000",
            "--set",
            "distill.batch_size=8",
            "--set",
            "export.parity_count=2",
            "--set",
            "export.zero_shot_count=8",
            "--set",
            "val_data={name: demo, location: val, size: 8}",
            *TINY_RECIPE_STUDENT,
            "--out",
            "{out}/runs",
            "--json",
            "{out}/qat.json",
        ],
        "qat.json",
    ),
    "soak": (["--fit-kills", "0", "--cache-kills", "0", "--json", "{out}/soak.json"], "soak.json"),
    "student_towers": (
        [
            "--default-only",
            "--small-references",
            "--families",
            "text",
            "--precisions",
            "fp32",
            "--warmup",
            "0",
            "--rounds",
            "1",
            "--out",
            "{out}",
        ],
        "report.json",
    ),
    "teacher_cache": (
        [
            "--samples",
            "8",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--demo-teacher",
            '{"steps": 1, "batch_size": 8}',
            "--out",
            "{out}",
        ],
        "report.json",
    ),
}


def test_every_bench_script_has_a_smoke_run():
    assert sorted(SMOKE) == SCRIPTS, "add the new bench script's smallest settings to SMOKE"


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_bench_script_shadows_an_importable_module(name):
    # `python bench/NAME.py` puts bench/ first on sys.path, where NAME.py would hide a package of that name.
    assert importlib.util.find_spec(name) is None, f"bench/{name}.py shadows the importable module {name!r}"


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_bench_script_runs_on_its_smallest_settings(name, tmp_path):
    args, written = SMOKE[name]
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "COMPRESS_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    command = [sys.executable, f"bench/{name}.py", *(a.replace("{out}", str(out)) for a in args)]
    # a guard against a hung script, not a speed check: the qat smoke (two recipes, four lowerings)
    # took 210 s on one 2-core machine and over 600 s on a slower AVX2-only one
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    # quiet by default, like the command line: none of the known third-party lines reach the console
    assert [f for f in SEEN_FRAGMENTS if f in result.stdout + result.stderr] == []
    report = json.loads((out / written).read_text(encoding="utf-8"))
    assert report, f"{written} is empty"
