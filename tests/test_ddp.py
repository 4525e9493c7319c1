"""Data-parallel training: two gloo CPU processes under torchrun against one process with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from distill_helpers import DDP_STEPS_PER_RUN, ddp_distiller
from safetensors.torch import load_file

from compress.data.sample import Sample
from compress.distill import checkpoint as ckpt
from compress.distill.batches import BatchStream, RankBatchStream, _rank_slice
from compress.distill.distributed import World

HERE = Path(__file__).parent

# The two runs add the same numbers in different orders: each rank backpropagates its slice and the
# gradients are averaged across ranks, where one process sums the whole batch at once. In float32
# that differs in the last bits per step, and 20 optimizer steps carry it along. AdamW moves a weight
# by up to about lr (1e-2 here) a step whatever its gradient's size, so a weight whose gradients are
# near zero can end a few 1e-6 apart (8.6e-6 seen on an AMD EPYC); atol 1e-4 is 1% of one step,
# far below what a wrong batch or a missing gradient average would leave.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("length, world_size", [(5, 2), (4, 2), (6, 3), (2, 4), (0, 2)])
def test_the_rank_slices_of_a_global_batch_put_together_are_that_batch(length, world_size):
    chunk = list(range(100, 100 + length))
    slices = [_rank_slice(chunk, rank, world_size) for rank in range(world_size)]
    assert [i for part in slices for i in part] == chunk
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_one_rank_takes_the_single_process_batches():
    class Numbers:
        def __len__(self):
            return 24

        def __getitem__(self, index):
            return Sample(image=None, caption=str(index), lang="en", key=str(index))

    alone = [
        ([s.caption for s in b.samples], b.consumed)
        for b in RankBatchStream(Numbers(), 5, seed=3, epoch=1, start=5, world=World())
    ]
    single = [([s.caption for s in b.samples], b.consumed) for b in BatchStream(Numbers(), 5, seed=3, epoch=1, start=5)]
    assert alone == single and [consumed for _, consumed in alone] == [5, 5, 5, 4]


def two_gloo_ranks() -> list[str]:
    """The torchrun launcher for two ranks on this machine, on a free loopback port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
    ]


def worker_command(run_dir, out, *options) -> list[str]:
    """tests/ddp_worker.py as two gloo CPU ranks under torchrun."""
    out.mkdir(exist_ok=True)
    return [*two_gloo_ranks(), str(HERE / "ddp_worker.py"), str(run_dir), str(out), *options]


WORKER_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(run_dir, out, *options) -> subprocess.CompletedProcess:
    return subprocess.run(worker_command(run_dir, out, *options), env=WORKER_ENV, capture_output=True, text=True, timeout=600)


def resume_under_torchrun(run, out, stopped_at, reference, reference_weights) -> None:
    """Resume `run` on two ranks and check it ends where the uninterrupted single-process run ends."""
    resumed = torchrun(run, out, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    report = json.loads((out / "rank0.json").read_text())
    assert report["resumed_from"] == [stopped_at.name]
    assert [e["global_step"] for e in report["loss_log"]] == list(range(1, DDP_STEPS_PER_RUN + 1))
    assert [e["loss"] for e in report["loss_log"]] == pytest.approx(
        [e["loss"] for e in reference["loss_log"]], rel=TOLERANCE["rtol"]
    )
    weights = load_file(str(out / "rank0.safetensors"))
    for key, value in reference_weights.items():
        torch.testing.assert_close(weights[key], value, **TOLERANCE, msg=key)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The reference: one process, the same global batch of 5."""
    run = tmp_path_factory.mktemp("single") / "run"
    distiller = ddp_distiller(run)
    report = distiller.fit("both")
    return run, report, {k: v.clone() for k, v in distiller.trainable.state_dict().items()}


needs_gloo = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="this torch build has no gloo backend",
)


@needs_gloo
def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path, single_process):
    single_run, reference, reference_weights = single_process
    out = tmp_path / "out"
    result = torchrun(tmp_path / "ddp", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    weights = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    for key in reference_weights:  # the ranks hold identical weights: they took identical steps
        assert torch.equal(weights[0][key], weights[1][key]), key
    losses = [e["loss"] for e in reports[0]["loss_log"]]
    assert len(losses) == DDP_STEPS_PER_RUN and [e["samples"] for e in reports[0]["loss_log"][:5]] == [5, 5, 5, 5, 4]
    assert losses == pytest.approx([e["loss"] for e in reference["loss_log"]], rel=TOLERANCE["rtol"])
    for key, value in reference_weights.items():
        torch.testing.assert_close(weights[0][key], value, **TOLERANCE, msg=key)

    # Only rank 0 wrote: one report and one set of checkpoints, those of the whole run.
    run = tmp_path / "ddp"
    assert json.loads((run / "report.json").read_text())["global_step"] == DDP_STEPS_PER_RUN
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == [
        p.name for p in ckpt.list_checkpoints(single_run / "checkpoints")
    ]
    assert not list((run / "checkpoints").glob(".tmp-*"))


@needs_gloo
def test_a_data_parallel_run_stopped_in_stage_2_resumes_under_torchrun_or_in_one_process(tmp_path, single_process):
    _, reference, reference_weights = single_process
    run = tmp_path / "ddp"
    # Rank 0 reads 3 samples a step (2 in an epoch's last): 38 reads stop it in step 14 of 20, inside
    # stage 2 and after step 12's checkpoint; torchrun then ends rank 1 too.
    stopped = torchrun(run, tmp_path / "stopped", "--crash-after", "38")
    assert stopped.returncode != 0 and "Crash" in stopped.stdout + stopped.stderr
    assert not (tmp_path / "stopped" / "rank0.json").exists()
    stopped_at = ckpt.latest_checkpoint(run / "checkpoints")
    assert stopped_at.name == ckpt.checkpoint_name(12)
    saved = ckpt.load_checkpoint(stopped_at, ddp_distiller(tmp_path / "probe").trainable).state
    assert saved["world_size"] == 2 and saved["train"]["stage"] == "align"

    # Resumed with the same world size: it ends where the uninterrupted run ends.
    import shutil

    shutil.copytree(run, tmp_path / "copy")
    resume_under_torchrun(run, tmp_path / "resumed", stopped_at, reference, reference_weights)

    # Resumed in one process: the global batch does not depend on the world size, so this works too.
    alone = ddp_distiller(tmp_path / "copy")
    report = alone.fit("both", resume=True)
    assert [e["loss"] for e in report["loss_log"]] == pytest.approx(
        [e["loss"] for e in reference["loss_log"]], rel=TOLERANCE["rtol"]
    )
    for key, value in reference_weights.items():
        torch.testing.assert_close(alone.trainable.state_dict()[key], value, **TOLERANCE, msg=key)


@needs_gloo
def test_a_data_parallel_job_killed_whole_in_stage_2_resumes_to_the_uninterrupted_end(tmp_path, single_process):
    _, reference, reference_weights = single_process
    run = tmp_path / "ddp"
    # Rank 0 hangs at its 39th read (in step 14 of 20, inside stage 2, after step 12's checkpoint);
    # then torchrun and both ranks get SIGKILL at once, as when a job's allocation ends.
    job = subprocess.Popen(
        worker_command(run, tmp_path / "killed", "--stall-after", "38"),
        env=WORKER_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while ckpt.latest_checkpoint(run / "checkpoints") != run / "checkpoints" / ckpt.checkpoint_name(12):
            assert job.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint of step 12 within 300 s"
            time.sleep(0.2)
        time.sleep(1.0)  # the ranks are now waiting on the hung read
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL
    killed_at = ckpt.latest_checkpoint(run / "checkpoints")
    assert killed_at.name == ckpt.checkpoint_name(12)
    assert not (tmp_path / "killed" / "rank0.json").exists()

    resume_under_torchrun(run, tmp_path / "resumed", killed_at, reference, reference_weights)
    # One report and one set of checkpoints, rank 0's, with no leftover temporary folder.
    assert json.loads((run / "report.json").read_text())["global_step"] == DDP_STEPS_PER_RUN
    assert not list((run / "checkpoints").glob(".tmp-*"))


@needs_gloo
def test_the_recipe_trains_on_two_ranks_under_torchrun_and_rank_0_writes_the_run(tmp_path):
    import yaml
    from recipe_helpers import TINY_TEACHER, tiny_config

    config = tiny_config(tmp_path, TINY_TEACHER)
    config["distill"]["device"] = "cpu"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COMPRESS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    command = [
        *two_gloo_ranks(),
        "-m",
        "compress",
        "recipe",
        "dc_clip",
        "--config",
        str(path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run = tmp_path / "runs" / "tiny"
    report = json.loads((run / "report.json").read_text())
    assert report["world_size"] == 2 and report["global_step"] == 5
    assert [e["samples"] for e in report["loss_log"]] == [8] * 5  # the global batch, 4 per rank
    stages = json.loads((run / "stages.json").read_text())["stages"]
    assert {s: r["status"] for s, r in stages.items()} == {
        "tokenizer": "finished",
        "distill": "finished",
        "align": "finished",
        "eval": "finished",
    }
    assert 0.0 <= report["zero_shot_top1"]["student"]["demo-color"]["en"] <= 1.0
    assert result.stdout.count("distillation summary") == 2  # rank 0's two fits; rank 1 prints nothing
