"""A write that fails part-way (a full disk, a read-only folder) keeps the previous file, leaves no
temporary behind, and ends with one `CompressError` naming the file.

The full disk is simulated: the real writer writes half of its bytes and then fails with ENOSPC, as
`write(2)` does when the device fills up. The read-only folder is simulated with EROFS from the
rename (a read-only mount) and, where the user is not root (root ignores permission bits), made
real with chmod.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import safetensors.torch
import torch
from distill_helpers import ColourPairs, RandomTeacher, resume_distiller
from safetensors import safe_open

from compress import files
from compress.cache import build_cache, layout
from compress.distill import checkpoint as ckpt
from compress.errors import CompressError

REAL_SAVE_FILE = safetensors.torch.save_file


def _half_then_enospc(real):
    """A writer that writes half of what `real` would, then fails as a full disk does."""

    def write(tensors, filename, *args, **kwargs):
        real(tensors, filename, *args, **kwargs)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))

    return write


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_a_json_write_that_fills_the_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = files.write_json_atomically(tmp_path / "report.json", {"step": 1})

    def half_then_full(temp: Path) -> None:
        temp.write_text('{"step": 2, "loss')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(
        CompressError,
        match=r"report\.json: cannot write \(no space left on the device\); the "
        "previous version is kept",
    ):
        files.write_atomically(path, half_then_full)
    assert json.loads(path.read_text()) == {"step": 1}
    assert _leftovers(tmp_path) == []


def test_a_tensor_file_that_fills_the_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = files.save_tensors_atomically(tmp_path / "t.safetensors", {"x": torch.ones(4)})
    before = path.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", _half_then_enospc(REAL_SAVE_FILE))
    with pytest.raises(CompressError, match=r"t\.safetensors: cannot write \(no space left"):
        files.save_tensors_atomically(path, {"x": torch.zeros(4)})
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_read_only_mount_refusing_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = files.write_text_atomically(tmp_path / "a.txt", "old")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(files.os, "replace", read_only)
    with pytest.raises(CompressError, match=r"a\.txt: cannot write \(Read-only file system\)"):
        files.write_text_atomically(path, "new")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into folders whose permission bits forbid it")
def test_a_read_only_folder_is_one_clear_error(tmp_path):
    folder = tmp_path / "locked"
    path = files.write_text_atomically(folder / "a.txt", "old")
    folder.chmod(0o555)
    try:
        with pytest.raises(CompressError, match=r"a\.txt: cannot write \(Permission denied\)"):
            files.write_text_atomically(path, "new")
        with pytest.raises(CompressError, match=r"sub/b\.txt: cannot write"):
            files.write_text_atomically(folder / "sub" / "b.txt", "new")
    finally:
        folder.chmod(0o755)
    assert path.read_text() == "old" and _leftovers(folder) == []


def _tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join((folder / name).read_bytes() for name in sorted(os.listdir(folder)))).hexdigest()


@pytest.mark.parametrize("failing", ["model", "training", "state", "mkdir"])
def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path, monkeypatch, failing):
    model = _tiny_model()
    previous = ckpt.save_checkpoint(tmp_path, 3, model, None, {"note": 3})
    before = _digest(previous)
    enospc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if failing == "model":

        def full(*args, **kwargs):
            raise enospc

        monkeypatch.setattr(ckpt, "save_model", full)
    elif failing == "training":
        monkeypatch.setattr(ckpt, "save_file", _half_then_enospc(REAL_SAVE_FILE))
    elif failing == "state":
        real_open = open

        def open_that_fills(path, mode="r", *args, **kwargs):
            if str(path).endswith(ckpt.STATE_FILE) and "w" in mode:
                raise enospc
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr("builtins.open", open_that_fills)
    else:
        real_mkdir = Path.mkdir

        def read_only_mkdir(self, *args, **kwargs):  # the checkpoint folder exists; nothing new can be made in it
            if self.name.startswith(".tmp-"):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    with pytest.raises(CompressError, match=rf"{ckpt.checkpoint_name(6)}: cannot write \("):
        ckpt.save_checkpoint(tmp_path, 6, model, None, {"note": 6})
    monkeypatch.undo()
    assert ckpt.list_checkpoints(tmp_path) == [previous] and _digest(previous) == before
    assert ckpt.load_checkpoint(previous, _tiny_model()).state["note"] == 3
    assert _leftovers(tmp_path) == []


def test_training_that_cannot_checkpoint_stops_with_one_error_and_resumes_from_the_last_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    writes = {"n": 0}

    def fills_on_the_second_checkpoint(tensors, filename, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 2:
            return _half_then_enospc(REAL_SAVE_FILE)(tensors, filename, *args, **kwargs)
        return REAL_SAVE_FILE(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", fills_on_the_second_checkpoint)
    with pytest.raises(CompressError, match=rf"checkpoints/{ckpt.checkpoint_name(4)}: cannot write \(no space left"):
        resume_distiller(run).fit("distill")
    monkeypatch.undo()
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == [ckpt.checkpoint_name(3)]
    assert _leftovers(run / "checkpoints") == []
    report = resume_distiller(run, student_seed=9).fit("distill", resume=True)
    assert [e["global_step"] for e in report["loss_log"]] == list(range(1, 9))


class _Colours(ColourPairs):
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.colours).encode()).hexdigest()


def test_a_cache_shard_that_cannot_be_written_keeps_the_written_shards(tmp_path, monkeypatch):
    out = tmp_path / "cache"
    writes = {"n": 0}

    def fills_on_the_third_shard(tensors, filename, *args, **kwargs):
        writes["n"] += 1
        if writes["n"] == 3:
            return _half_then_enospc(REAL_SAVE_FILE)(tensors, filename, *args, **kwargs)
        return REAL_SAVE_FILE(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", fills_on_the_third_shard)
    teacher = RandomTeacher(embed_dim=8)
    with pytest.raises(CompressError, match=rf"{layout.shard_name(2)}: cannot write \(no space left on the device\)$"):
        build_cache(teacher, _Colours(16), out, shard_size=4, batch_size=4, progress=False)
    monkeypatch.undo()
    written = sorted(p.name for p in (out / layout.SHARD_DIR).iterdir())
    assert written == [layout.shard_name(0), layout.shard_name(1)] and _leftovers(out) == []
    for name in written:
        with safe_open(str(out / layout.SHARD_DIR / name), framework="pt") as f:
            assert f.metadata()["format"] == layout.SHARD_FORMAT
    result = build_cache(teacher, _Colours(16), out, shard_size=4, batch_size=4, progress=False)
    assert (out / layout.INDEX_FILE).is_file() and result is not None
