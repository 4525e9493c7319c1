"""Checkpoints and resume: a run stopped (or SIGKILLed) part-way ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import RESUME_STEPS_PER_RUN, ColourPairs, Crash, CrashAfter, resume_distiller
from torch import nn

from compress.distill import checkpoint as ckpt
from compress.errors import CompressError
from compress.quant import fake_quantized_modules

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its report and final trainable weights."""
    distiller = resume_distiller(tmp_path_factory.mktemp("reference") / "run")
    report = distiller.fit("both")
    return report, {k: v.clone() for k, v in distiller.trainable.state_dict().items()}


def _assert_same_run(report, weights, reference):
    ref_report, ref_weights = reference
    steps = [e["global_step"] for e in report["loss_log"]]
    assert steps == list(range(1, RESUME_STEPS_PER_RUN + 1))  # every step exactly once, no gaps
    assert report["loss_log"] == ref_report["loss_log"]
    assert report["epoch_losses"] == ref_report["epoch_losses"]
    assert weights.keys() == ref_weights.keys()
    for key in weights:
        assert torch.equal(weights[key], ref_weights[key]), key


# 6 samples per step, 8 steps per stage, checkpoints every 3 steps and at epoch ends (4, 8, 12, 16):
# 20 reads stops in step 4 (resume mid-epoch from step 3), 50 stops in step 9 (resume between the
# stages from step 8), 92 stops in step 16 (resume mid-epoch of stage 2 from step 15).
@pytest.mark.parametrize("reads, resumed_at", [(20, 3), (50, 8), (92, 15)])
def test_a_stopped_run_resumes_to_the_same_weights_and_losses(tmp_path, reference, reads, resumed_at):
    run = tmp_path / "run"
    with pytest.raises(Crash):
        resume_distiller(run, data=CrashAfter(ColourPairs(24), reads)).fit("both")
    assert ckpt.latest_checkpoint(run / "checkpoints").name == ckpt.checkpoint_name(resumed_at)

    # A new process would start from a differently initialised student; the checkpoint overrides it.
    resumed = resume_distiller(run, student_seed=99)
    report = resumed.fit("both", resume=True)

    assert report["resumed_from"] == [ckpt.checkpoint_name(resumed_at)]
    _assert_same_run(report, resumed.trainable.state_dict(), reference)


def test_a_sigkilled_process_resumes_with_a_continuous_loss_curve(tmp_path, reference):
    run = tmp_path / "run"
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "resume_worker.py"), str(run), "0.02"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        while not ckpt.list_checkpoints(run / "checkpoints"):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "no checkpoint appeared in time"
            time.sleep(0.02)
        time.sleep(0.15)  # let it get a step or so past the checkpoint: that work is lost and redone
        assert worker.poll() is None, "the worker finished before it could be killed"
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
    assert not (run / "report.json").exists()
    killed_at = ckpt.latest_checkpoint(run / "checkpoints")
    assert killed_at is not None and int(killed_at.name.split("-")[1]) < RESUME_STEPS_PER_RUN

    resumed = resume_distiller(run, student_seed=5)
    report = resumed.fit("both", resume=True)

    assert report["global_step"] == RESUME_STEPS_PER_RUN
    assert report["resumed_from"] == [killed_at.name]
    _assert_same_run(report, resumed.trainable.state_dict(), reference)
    assert report["stages"]["align"]["final_loss"] == reference[0]["stages"]["align"]["final_loss"]
    on_disk = json.loads((run / "report.json").read_text())
    assert [e["global_step"] for e in on_disk["loss_log"]] == list(range(1, RESUME_STEPS_PER_RUN + 1))


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(CompressError, match="no checkpoint to resume from"):
        resume_distiller(tmp_path / "empty").fit("both", resume=True)


def test_resuming_a_finished_run_trains_nothing_more(tmp_path):
    run = tmp_path / "run"
    resume_distiller(run, data=ColourPairs(24)).fit("distill")
    again = resume_distiller(run, student_seed=3)
    report = again.fit("distill", resume=True)
    assert report["global_step"] == 8 and report["completed_stages"] == ["distill"]


def test_a_fresh_fit_clears_old_checkpoints(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Crash):
        resume_distiller(run, data=CrashAfter(ColourPairs(24), 20)).fit("distill")
    assert ckpt.list_checkpoints(run / "checkpoints")
    with pytest.raises(Crash):
        resume_distiller(run, data=CrashAfter(ColourPairs(24), 3)).fit("distill")
    assert ckpt.list_checkpoints(run / "checkpoints") == []


# ---------------------------------------------------------------- the checkpoint files themselves


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_checkpoints_are_published_whole_and_only_the_newest_are_kept(tmp_path):
    model = _tiny_model()
    for step in (3, 6, 9):
        ckpt.save_checkpoint(tmp_path, step, model, None, {"note": step}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [ckpt.checkpoint_name(6), ckpt.checkpoint_name(9)]
    # A folder being assembled when the process died is never taken for a checkpoint.
    partial = tmp_path / f".tmp-{ckpt.checkpoint_name(12)}-4242"
    partial.mkdir()
    (partial / ckpt.MODEL_FILE).write_bytes(b"half")
    assert ckpt.latest_checkpoint(tmp_path).name == ckpt.checkpoint_name(9)
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir() if p != partial)


def test_checkpoint_round_trip_restores_weights_optimizer_and_random_streams(tmp_path):
    model = _tiny_model(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(5, 3)).pow(2).sum().backward()
    optimizer.step()
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    path = ckpt.save_checkpoint(tmp_path, 1, model, optimizer.state_dict(), {"position": 4})
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])

    other = _tiny_model(1)
    loaded = ckpt.load_checkpoint(path, other)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded.state["position"] == 4
    fresh = torch.optim.AdamW(other.parameters(), lr=0.1)
    fresh.load_state_dict(loaded.optimizer)
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(value, fresh.state_dict()["state"][0][key])
    ckpt.restore_rng(loaded.rng_tensors, loaded.state["rng"])
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_a_broken_or_foreign_checkpoint_is_refused_with_its_path(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, _tiny_model(), None, {})
    with pytest.raises(CompressError, match="does not match"):
        ckpt.load_checkpoint(path, nn.Linear(3, 2))
    (path / ckpt.TRAINING_FILE).unlink()
    with pytest.raises(CompressError, match="not a checkpoint"):
        ckpt.load_checkpoint(path, _tiny_model())


# ---------------------------------------------------------------- QAT in stage 2


def test_a_run_with_qat_stopped_in_stage_2_resumes_to_the_same_weights_and_losses(tmp_path):
    reference_run = resume_distiller(tmp_path / "reference", qat=True)
    ref_report = reference_run.fit("both")
    assert reference_run.qat_layers == 3  # the image tower's two linears and the text projection
    reference = (ref_report, {k: v.clone() for k, v in reference_run.trainable.state_dict().items()})

    run = tmp_path / "run"
    with pytest.raises(Crash):  # 92 reads: killed in step 16, the last checkpoint is step 15, inside stage 2
        resume_distiller(run, data=CrashAfter(ColourPairs(24), 92), qat=True).fit("both")
    resumed = resume_distiller(run, student_seed=99, qat=True)
    report = resumed.fit("both", resume=True)

    assert report["resumed_from"] == [ckpt.checkpoint_name(15)]
    _assert_same_run(report, resumed.trainable.state_dict(), reference)
    assert not fake_quantized_modules(resumed.student)  # converted at the end of stage 2
