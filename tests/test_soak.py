"""The kill soak's short version: 3 SIGKILLs (2 in a two-stage fit, 1 in a teacher-cache build), each
followed by a resume, end bit for bit where uninterrupted runs end. The long soak is bench/soak.py."""

from __future__ import annotations

from pathlib import Path

from script_modules import load_script

BENCH = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


def _soak_module():
    return load_script(BENCH, "compress_bench_soak")


def test_killed_and_resumed_runs_end_bit_for_bit_like_uninterrupted_ones(tmp_path):
    soak = _soak_module()
    fit, cache = soak.run_soak(fit_kills=2, cache_kills=1, seed=1, work=tmp_path)
    assert (fit.kills, cache.kills) == (2, 1)
    assert fit.resumes >= 2 and cache.resumes >= 1
    assert fit.half_written == [] and cache.half_written == []
    assert fit.mismatches == [] and cache.mismatches == []
    places = {
        "start-up",
        "stage 1",
        "stage 2",
        "between stages",
        "finishing",
        "checkpoint write (stage 1)",
        "checkpoint write (stage 2)",
        "checkpoint write (between stages)",
    }
    assert sum(fit.landed.values()) == 2 and set(fit.landed) <= places
    assert set(cache.landed) <= {"embedding", "shard write"}


def test_the_soak_detects_a_half_written_file_and_a_changed_output(tmp_path):
    soak = _soak_module()
    shard = tmp_path / "cache" / "shards" / "shard-00000.safetensors"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00{"a":')  # a header cut short
    (tmp_path / "cache" / "shards" / ".shard-00001.safetensors.1.ab.tmp").write_bytes(b"half")  # temporaries are fine
    assert soak.half_written(tmp_path) == ["cache/shards/shard-00000.safetensors"]
    report = tmp_path / "run" / "report.json"
    report.parent.mkdir()
    report.write_text('{"loss_log": [{"global_step": 1}], "timings": {"fit_wall_seconds": 1.0}}')
    first = soak.content_digest(report, report.parent)
    report.write_text('{"loss_log": [{"global_step": 1}], "timings": {"fit_wall_seconds": 2.0}}')
    assert soak.content_digest(report, report.parent) == first  # timings aside
    report.write_text('{"loss_log": [{"global_step": 1}, {"global_step": 1}, {"global_step": 3}]}')
    assert soak.content_digest(report, report.parent) != first
    faults = soak.loss_log_faults(tmp_path)
    assert "step 1 repeated" in faults and "step 2 missing" in faults
