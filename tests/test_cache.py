"""The teacher cache: built once, equal to the online teacher, resumable after SIGKILL, split across ranks,
replaying augmented views exactly, refusing every mismatch, and training a student through the Distiller."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import make_student
from safetensors.torch import load_file

from compress.cache import (
    CachedViewDataset,
    TeacherCache,
    apply_augmentation,
    build_cache,
    distiller_from_cache,
    draw_view_params,
    finalize_cache,
    make_augmentation,
)
from compress.cli import main as cli_main
from compress.data.sample import Sample
from compress.demo_world import open_demo
from compress.distill import Distiller, TeacherTargets
from compress.errors import CompressError
from teachers.demo import load_demo_teacher

TINY_TEACHER = dict(
    steps=3, batch_size=8, width=8, embed_dim=16, text_width=16, text_layers=1, text_heads=2, image_size=32, context_length=48
)
IMAGE_SIZE = 32
SIZE = 64
PLAN = dict(batch_size=16, shard_size=16, augmentation="crop-flip", views=2, seed=3)  # 4 shards, 2 views each

# A separate process that builds the same cache slowly (a delay per sample) so it can be killed mid-build.
KILL_WORKER = """
import sys, time
from compress.cache import build_cache
from compress.demo_world import DemoDataset
from teachers.demo import load_demo_teacher

class SlowDemo(DemoDataset):
    def __getitem__(self, index):
        time.sleep(0.03)
        return super().__getitem__(index)

teacher_dir, out, size, image_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
plan = dict(batch_size=16, shard_size=16, augmentation="crop-flip", views=2, seed=3)
data = SlowDemo("train", size=size, image_size=image_size)
build_cache(load_demo_teacher(teacher_dir), data, out, progress=False, **plan)
"""


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-demo-teacher")
    load_demo_teacher(folder, progress=False, **TINY_TEACHER)
    return folder


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    return load_demo_teacher(teacher_dir)


def demo(size: int = SIZE, **options):
    return open_demo("train", size=size, image_size=IMAGE_SIZE, **options)


@pytest.fixture(scope="module")
def augmented(teacher, tmp_path_factory) -> Path:
    """The reference build: 64 samples, crop-flip x2, four shards, one process, uninterrupted."""
    out = tmp_path_factory.mktemp("augmented") / "cache"
    result = build_cache(teacher, demo(), out, progress=False, **PLAN)
    assert result.complete and result.shards_built == [0, 1, 2, 3] and result.views == 2 * SIZE
    return out


@pytest.fixture(scope="module")
def plain(teacher, tmp_path_factory) -> Path:
    """An unaugmented cache of 32 samples in shards of 10 (the last one short)."""
    out = tmp_path_factory.mktemp("plain") / "cache"
    build_cache(teacher, demo(32), out, batch_size=8, shard_size=10, progress=False)
    return out


def shard_tensors(out: Path) -> list[dict[str, torch.Tensor]]:
    return [load_file(str(p)) for p in sorted((out / "shards").glob("shard-*.safetensors"))]


def without_checksums(index: dict) -> dict:
    """An index without the shard files' sha256 (safetensors orders header metadata differently per process)."""
    return {**index, "shards": [{k: v for k, v in shard.items() if k != "sha256"} for shard in index["shards"]]}


def test_cached_embeddings_equal_the_online_teachers(teacher, plain):
    cache = TeacherCache(plain)
    data = demo(32)
    index = json.loads((plain / "cache.json").read_text())
    assert index["teacher"]["fingerprint"] == teacher.fingerprint
    assert index["dataset"]["digest"] == data.digest() and index["augmentation"]["name"] == "none"
    assert [(s["start"], s["stop"]) for s in index["shards"]] == [(0, 10), (10, 20), (20, 30), (30, 32)]
    assert all(t["image"].dtype == torch.float16 and t["text"].dtype == torch.float16 for t in shard_tensors(plain))

    samples = [data[i] for i in range(32)]
    cached = cache.targets_for(data, teacher_fingerprint=teacher.fingerprint)(samples)
    online = TeacherTargets(teacher)(samples)
    for tower in ("image", "text"):
        assert cached[tower].dtype == torch.float32 and cached[tower].shape == (32, teacher.embed_dim)
        torch.testing.assert_close(cached[tower], online[tower], atol=2e-3, rtol=0)
    # Rows are found by key, whatever the batch order.
    shuffled = [samples[i] for i in (7, 0, 31)]
    torch.testing.assert_close(cache.targets_for(data)(shuffled)["text"], online["text"][[7, 0, 31]], atol=2e-3, rtol=0)


def test_stored_views_replay_to_the_identical_pixels_the_teacher_embedded(teacher, augmented):
    cache = TeacherCache(augmented)
    settings = make_augmentation("crop-flip", views=2, seed=3)
    assert cache.augmentation == settings
    data = demo()
    views = CachedViewDataset(data, cache)
    assert len(views) == 2 * SIZE

    flips, boxes = set(), set()
    for index in (0, 5, 33):
        sample = data[index]
        for view in range(2):
            item = views[view * SIZE + index]
            assert item.key == f"{sample.key}#v{view}" and item.caption == sample.caption
            fresh = draw_view_params(settings, sample.image.size, index, view)
            assert fresh == draw_view_params(settings, sample.image.size, index, view)
            assert fresh == cache.view_params(sample.key, view)
            replayed = np.asarray(apply_augmentation(sample.image, fresh))
            assert np.array_equal(np.asarray(item.image), replayed) and item.image.size == sample.image.size
            flips.add(fresh.flip)
            boxes.add((fresh.top, fresh.left, fresh.height, fresh.width))
            # The embedding stored for this view is the teacher's embedding of exactly these pixels.
            stored = cache.embeddings(sample.key, view)["image"]
            torch.testing.assert_close(stored, teacher.encode_images([item.image])[0], atol=2e-3, rtol=0)
    assert len(boxes) == 6 and flips == {True, False}
    # Drawing parameters leaves the global random stream alone.
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    draw_view_params(settings, (32, 32), 0, 0)
    assert torch.equal(torch.rand(3), expected)
    assert not np.array_equal(np.asarray(views[0].image), np.asarray(data[0].image))


def test_a_build_killed_with_sigkill_resumes_to_the_uninterrupted_cache(teacher_dir, teacher, augmented, tmp_path):
    out = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-c", KILL_WORKER, str(teacher_dir), str(out), str(SIZE), str(IMAGE_SIZE)]
    log = tmp_path / "worker.log"
    with open(log, "wb") as stderr:
        worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    first = out / "shards" / "shard-00000.safetensors"
    deadline = time.monotonic() + 120
    while not first.exists():
        assert worker.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "the worker wrote no shard within 120 s"
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert worker.returncode == -signal.SIGKILL
    kept = sorted(p.name for p in (out / "shards").glob("shard-*.safetensors"))
    assert 1 <= len(kept) < 4 and not (out / "cache.json").exists()
    with pytest.raises(CompressError, match="unfinished"):
        TeacherCache(out)

    result = build_cache(teacher, demo(), out, progress=False, **PLAN)
    assert result.complete and len(result.shards_kept) == len(kept)
    assert sorted(result.shards_kept + result.shards_built) == [0, 1, 2, 3]
    assert not list((out / "shards").glob(".*.tmp"))
    resumed = json.loads((out / "cache.json").read_text())
    reference = json.loads((augmented / "cache.json").read_text())
    for key in ("teacher", "dataset", "augmentation", "plan_digest", "samples", "skipped"):
        assert resumed[key] == reference[key], key
    for got, want in zip(shard_tensors(out), shard_tensors(augmented), strict=True):
        assert got.keys() == want.keys()
        for name in got:
            if name in ("image", "text"):  # another process may round differently in the last fp16 bit
                torch.testing.assert_close(got[name].float(), want[name].float(), atol=2e-3, rtol=0)
            else:
                assert torch.equal(got[name], want[name]), name
    assert TeacherCache(out).keys() == TeacherCache(augmented).keys()


def test_two_ranks_build_the_same_cache_as_one(teacher, augmented, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    first = build_cache(teacher, demo(), out, progress=False, **PLAN)
    assert first.shards_built == [0, 2] and not first.complete and first.waiting_for == [1, 3]
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-00000.safetensors", "shard-00002.safetensors"]
    with pytest.raises(CompressError, match="2 of 4 shards are missing"):
        finalize_cache(out)
    monkeypatch.setenv("RANK", "1")
    second = build_cache(teacher, demo(), out, progress=False, **PLAN)
    assert second.shards_built == [1, 3] and second.complete  # the last rank to finish writes the index

    # Same process, same batches: the same tensors, so the same index (bar the files' own sha256s).
    reference = without_checksums(json.loads((augmented / "cache.json").read_text()))
    assert without_checksums(json.loads((out / "cache.json").read_text())) == reference
    for got, want in zip(shard_tensors(out), shard_tensors(augmented), strict=True):
        assert got.keys() == want.keys() and all(torch.equal(got[name], want[name]) for name in got)
    (out / "cache.json").unlink()
    assert without_checksums(finalize_cache(out)) == reference


def test_every_mismatch_is_refused_with_a_message_naming_it(teacher, plain, augmented, tmp_path):
    cache, data = TeacherCache(plain), demo(32)
    with pytest.raises(CompressError, match="built by teacher .* not by the given teacher other-teacher"):
        cache.targets_for(data, teacher_fingerprint="other-teacher")
    with pytest.raises(CompressError, match="dataset digest"):
        cache.targets_for(demo(32, seed=1))
    with pytest.raises(CompressError, match="augmentation settings differ .*name 'none' here, 'crop-flip'"):
        cache.targets_for(data, augmentation="crop-flip")
    targets = cache.targets_for(data, augmentation="none")
    stranger = Sample(image=data[0].image, caption="a red circle", lang="en", key="demo/val/3")
    with pytest.raises(CompressError, match="sample key 'demo/val/3' is not in the teacher cache"):
        targets([data[0], stranger])

    views = TeacherCache(augmented)
    with pytest.raises(CompressError, match="augmentation settings differ .*views 2 here, 4 asked for"):
        views.targets_for(CachedViewDataset(demo(), views), augmentation="crop-flip")
    with pytest.raises(CompressError, match="stores augmented views .*CachedViewDataset"):
        views.targets_for(demo())
    with pytest.raises(CompressError, match="dataset digest"):
        CachedViewDataset(demo(seed=2), views)

    # Resuming into a folder built with other settings, and reading a damaged shard.
    with pytest.raises(CompressError, match=r"other settings \(shard_size 10 -> 8\)"):
        build_cache(teacher, data, plain, batch_size=8, shard_size=8, progress=False)
    damaged = tmp_path / "damaged"
    shutil.copytree(plain, damaged)
    shard = damaged / "shards" / "shard-00001.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(CompressError, match="shard-00001.safetensors: sha256 differs"):
        TeacherCache(damaged).targets_for(data)


def test_the_distiller_trains_from_the_cache_as_it_would_from_the_teacher(teacher, augmented, tmp_path):
    options = dict(batch_size=16, lr=1e-2, epochs=3, seed=0, checkpoint_every=1000, progress=False)
    cached_run = distiller_from_cache(
        augmented,
        make_student(embed_dim=16),
        demo(),
        run_dir=tmp_path / "cached",
        augmentation={"name": "crop-flip", "views": 2, "seed": 3},
        **options,
    )
    assert cached_run.teacher.fingerprint == teacher.fingerprint  # a stand-in: the teacher is never called
    report = cached_run.fit("distill")
    losses = report["epoch_losses"]["distill"]
    assert report["stages"]["distill"]["steps"] == 3 * (2 * SIZE // 16)
    assert losses[-1] < 0.8 * losses[0], losses

    # The same run against the online teacher on the same views starts from the same loss.
    views = CachedViewDataset(demo(), TeacherCache(augmented))
    online = Distiller(
        teacher, make_student(embed_dim=16), data=views, run_dir=tmp_path / "online", **{**options, "epochs": 1, "steps": 2}
    )
    online_log = online.fit("distill")["loss_log"]
    assert online_log[0]["loss"] == pytest.approx(report["loss_log"][0]["loss"], rel=1e-2)
    other_teacher = load_demo_teacher(tmp_path / "other", progress=False, **{**TINY_TEACHER, "steps": 1})
    with pytest.raises(CompressError, match="not by the given teacher"):
        distiller_from_cache(
            augmented, make_student(embed_dim=16), demo(), run_dir=tmp_path / "x", teacher=other_teacher, **options
        )


def test_cli_builds_a_cache_and_reports_bad_data_in_one_line(teacher_dir, tmp_path, capsys):
    out = tmp_path / "cli-cache"
    data = json.dumps({"name": "demo", "location": "train", "size": 12, "image_size": IMAGE_SIZE})
    args = [
        "cache",
        "build",
        "--teacher",
        f"demo:{teacher_dir}",
        "--data",
        data,
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--shard-size",
        "5",
        "--augment",
        "randaug-lite",
        "--views",
        "2",
        "--no-progress",
    ]
    assert cli_main(args) == 0
    assert "complete:" in capsys.readouterr().out
    cache = TeacherCache(out)
    assert len(cache) == 12 and cache.views == 2 and cache.augmentation.name == "randaug-lite"
    assert cli_main(args) == 0  # a rerun keeps every shard
    assert "complete:" in capsys.readouterr().out
    assert cli_main(["cache", "info", str(out)]) == 0
    assert "randaug-lite x2" in capsys.readouterr().out

    missing = tmp_path / "nowhere" / "pairs.jsonl"
    code = cli_main(
        ["cache", "build", "--teacher", f"demo:{teacher_dir}", "--data", str(missing), "--out", str(tmp_path / "bad")]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert err.startswith("compress cache: error:") and str(missing) in err
