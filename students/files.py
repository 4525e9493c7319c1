"""Atomic file writes: a temporary file beside the target, then a rename, so readers never see half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file


def _temporary_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = _temporary_beside(path)
    try:
        tmp.write_bytes(data)
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value) -> None:
    write_bytes_atomic(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_safetensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tmp = _temporary_beside(path)
    try:
        save_file({name: t.detach().cpu().contiguous() for name, t in tensors.items()}, str(tmp), metadata=metadata)
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
