"""Files written whole and read back checked: atomic writes and sha256 digests, shared by every
part of compress that publishes files (runs, checkpoints, caches, students, bundles, search)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compress.errors import CompressError


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _temporary_name(path: Path) -> Path:
    """A fresh temporary path beside `path`: `.<name>.<pid>.<random>.tmp` (the same folder, so the
    final rename stays on one file system)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomically(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Publish `path` whole: `write(temp)` fills a temporary file beside it, which is flushed to disk
    and renamed over `path`. A reader, or a process killed mid-write, sees the old file or the new
    one, never part of one. A failed `write` leaves the old file and no temporary behind; a failure
    of the file system (a full disk, a read-only folder) is raised as one `CompressError` naming
    `path`."""
    path = Path(path).expanduser()
    temp = _temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    fsync_folder(path.parent)
    return path


def write_error(path: str | Path, exc: OSError) -> CompressError:
    """The one error a failed write of `path` ends with: what the system said, and that nothing changed."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    kept = "; the previous version is kept" if Path(path).exists() else ""
    return CompressError(f"{path}: cannot write ({reason}){kept}")


def _remove_quietly(temp: Path) -> None:
    try:
        temp.unlink(missing_ok=True)
    except OSError:  # the folder itself refuses changes: the temporary was never created there
        pass


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    return write_atomically(path, lambda temp: temp.write_bytes(data))


def write_text_atomically(path: str | Path, text: str) -> Path:
    return write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json_atomically(
    path: str | Path, value: Any, *, indent: int | None = 2, default: Callable[[Any], Any] | None = None
) -> Path:
    """`value` as UTF-8 JSON (non-ASCII kept as is) ending in a newline, written atomically."""
    return write_text_atomically(path, json.dumps(value, indent=indent, ensure_ascii=False, default=default) + "\n")


def save_tensors_atomically(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Tensors (moved to the CPU, made contiguous) as a safetensors file, written atomically."""
    from safetensors.torch import save_file  # torch stays out of the modules that only write JSON

    cpu = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    return write_atomically(path, lambda temp: save_file(cpu, str(temp), metadata=metadata))


def fsync_folder(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the platform allows it."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without folder file descriptors
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
