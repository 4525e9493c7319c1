"""Training checkpoints: safetensors for every tensor, JSON for everything else, written atomically.

A checkpoint is one folder `<run>/checkpoints/step-<global step>/` holding

    model.safetensors     the trainable modules (student, adapters, loss parameters)
    training.safetensors  optimizer tensors and the torch RNG states
    state.json            position (stage, epoch, batch, steps), loss log, optimizer/scheduler
                          structure, numpy/python RNG states

The folder is assembled under a temporary name in the same directory, every file is fsynced,
and one `os.replace` publishes it, so a run killed at any moment leaves either the previous
checkpoint or the new one, never half of one. Only the newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from compress.errors import CompressError
from compress.files import fsync_folder, write_error

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
TRAINING_FILE = "training.safetensors"
STATE_FILE = "state.json"
_NAME = re.compile(r"^step-(\d+)$")


@dataclass
class LoadedCheckpoint:
    """A checkpoint read back: JSON state, optimizer state dict (or None), and the tensors to restore."""

    path: Path
    state: dict[str, Any]
    optimizer: dict[str, Any] | None
    rng_tensors: dict[str, torch.Tensor]


def checkpoint_name(global_step: int) -> str:
    return f"step-{global_step:09d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Published checkpoints under `root`, oldest first (temporary folders are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


# ---------------------------------------------------------------- optimizer state <-> tensors + JSON


def split_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state dict as (flat tensors for safetensors, JSON-ready structure referencing them)."""
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for param_id, values in state_dict["state"].items():
        entry = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                name = f"optimizer.{param_id}.{key}"
                tensors[name] = value.detach().cpu().contiguous().clone()
                entry[key] = {"tensor": name}
            else:
                entry[key] = {"value": value}
        per_param[str(param_id)] = entry
    return tensors, {"state": per_param, "param_groups": state_dict["param_groups"]}


def join_optimizer_state(structure: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Inverse of `split_optimizer_state`."""
    state = {}
    for param_id, entry in structure["state"].items():
        state[int(param_id)] = {
            key: tensors[slot["tensor"]] if "tensor" in slot else slot["value"] for key, slot in entry.items()
        }
    return {"state": state, "param_groups": structure["param_groups"]}


# ---------------------------------------------------------------- RNG states


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch (CPU and CUDA) RNG states as tensors; numpy and python RNG states as JSON."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = cuda_state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return tensors, {
        "numpy": {
            "kind": kind,
            "keys": keys.tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = saved["numpy"]
    keys = np.array(n["keys"], dtype=np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = saved["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ---------------------------------------------------------------- atomic writing


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def save_checkpoint(
    root: str | Path,
    global_step: int,
    model: nn.Module,
    optimizer_state: dict[str, Any] | None,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Publish `<root>/step-<global_step>/` atomically, then drop all but the newest `keep` checkpoints.

    `model` is one module holding every trainable part; `state` is the JSON-ready training state
    (position, logs, scheduler); optimizer and RNG tensors go to safetensors.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(global_step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:  # a full disk or a read-only folder: the previous checkpoint stays, the temporary goes
        tmp.mkdir()
        save_model(model, str(tmp / MODEL_FILE))
        tensors, rng_json = capture_rng()
        payload = dict(state, format=FORMAT_VERSION, global_step=global_step, rng=rng_json, optimizer=None)
        if optimizer_state is not None:
            optimizer_tensors, payload["optimizer"] = split_optimizer_state(optimizer_state)
            tensors.update(optimizer_tensors)
        save_file(tensors, str(tmp / TRAINING_FILE))
        with open(tmp / STATE_FILE, "w", encoding="utf-8") as handle:
            # json.dumps takes the C encoder; json.dump streams through the pure-Python one, several times slower.
            handle.write(json.dumps(payload, ensure_ascii=False))
        for name in (MODEL_FILE, TRAINING_FILE, STATE_FILE):
            _fsync_file(tmp / name)
        fsync_folder(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(final, exc) from None

    if final.exists():  # the same step written again (a rerun): swap the old one out first
        stale = root / f".stale-{final.name}-{os.getpid()}"
        os.replace(final, stale)
        os.replace(tmp, final)
        shutil.rmtree(stale)
    else:
        os.replace(tmp, final)
    fsync_folder(root)

    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in root.glob(".tmp-step-*"):  # a checkpoint whose writer was killed part-way
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, model: nn.Module) -> LoadedCheckpoint:
    """Load weights into `model` (strictly) and read the rest; raises CompressError naming the folder."""
    path = Path(path)
    for name in (MODEL_FILE, TRAINING_FILE, STATE_FILE):
        if not (path / name).is_file():
            raise CompressError(f"{path}: not a checkpoint (missing {name})")
    with open(path / STATE_FILE, encoding="utf-8") as handle:
        try:
            state = json.load(handle)
        except json.JSONDecodeError as exc:
            raise CompressError(f"{path / STATE_FILE}: unreadable checkpoint state ({exc})") from None
    if state.get("format") != FORMAT_VERSION:
        raise CompressError(f"{path}: checkpoint format {state.get('format')!r}, this version reads {FORMAT_VERSION}")
    try:
        load_model(model, str(path / MODEL_FILE), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CompressError(f"{path / MODEL_FILE}: does not match this student/adapters/losses ({first})") from None
    tensors = load_file(str(path / TRAINING_FILE))
    optimizer = join_optimizer_state(state["optimizer"], tensors) if state.get("optimizer") else None
    rng_tensors = {k: v for k, v in tensors.items() if k.startswith("rng.")}
    return LoadedCheckpoint(path=path, state=state, optimizer=optimizer, rng_tensors=rng_tensors)


def remove_checkpoints(root: str | Path) -> int:
    """Delete every checkpoint (and leftover temporary folder) under `root`; returns how many checkpoints."""
    root = Path(root)
    found = list_checkpoints(root)
    for path in found:
        shutil.rmtree(path)
    if root.is_dir():
        for leftover in root.glob(".tmp-step-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    return len(found)
