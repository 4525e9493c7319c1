"""Atomic writes and file digests (compress.files): a file is replaced whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from compress.errors import CompressError
from compress.files import (
    file_sha256,
    save_tensors_atomically,
    write_atomically,
    write_bytes_atomically,
    write_json_atomically,
)


def test_json_is_written_whole_with_its_text_as_is(tmp_path):
    target = tmp_path / "new" / "report.json"  # missing folders are made
    write_json_atomically(target, {"a": 1})
    write_json_atomically(target, {"a": 2, "text": "中文"})
    raw = target.read_text(encoding="utf-8")
    assert json.loads(raw) == {"a": 2, "text": "中文"} and "中文" in raw and raw.endswith("\n")
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    write_bytes_atomically(target, b"old")

    def broken(temp):
        temp.write_bytes(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(CompressError, match=r"weights\.bin: cannot write \(disk full\); the previous version is kept"):
        write_atomically(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_bytes_atomically(tmp_path / "model.pte", b"\x00" * 8)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, as a plain open() would make it


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    data = os.urandom(3 << 20)  # over several read blocks
    path = write_bytes_atomically(tmp_path / "blob", data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_tensors_are_saved_whole_contiguous_and_with_their_metadata(tmp_path):
    transposed = torch.arange(6.0).reshape(2, 3).t()  # not contiguous: safetensors alone refuses it
    weight = torch.ones(2, requires_grad=True)  # a parameter-like tensor, detached on the way out
    path = save_tensors_atomically(tmp_path / "model.safetensors", {"t": transposed, "w": weight}, metadata={"format": "pt"})
    loaded = load_file(str(path))
    assert torch.equal(loaded["t"], transposed) and torch.equal(loaded["w"], weight.detach())
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"format": "pt"}
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
