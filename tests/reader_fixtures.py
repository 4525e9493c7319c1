"""A hand-written teacher cache for the reader tests: its index is mutated to fuzz and to escape."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from compress.cache import layout
from compress.files import file_sha256, save_tensors_atomically, write_json_atomically


def valid_cache(folder: Path) -> dict:
    """A small, complete teacher-cache folder (index and one real shard) written by hand; returns its index."""
    plan = {
        "format": layout.CACHE_FORMAT,
        "version": layout.FORMAT_VERSION,
        "teacher": {"name": "t", "fingerprint": "t:1", "embed_dim": 4, "image": True, "text": True},
        "dataset": {"digest": "d" * 64, "size": 2},
        "augmentation": {"name": "none", "views": 1, "seed": 0},
        "shard_size": 2,
        "num_shards": 1,
        "dtype": layout.STORE_DTYPE,
    }
    digest = layout.plan_digest(plan)
    shard = layout.shard_path(folder, 0)
    save_tensors_atomically(
        shard,
        {
            "image": torch.zeros(2, 1, 4, dtype=torch.float16),
            "text": torch.zeros(2, 4, dtype=torch.float16),
            "present": torch.ones(2, dtype=torch.uint8),
        },
        metadata={
            "format": layout.SHARD_FORMAT,
            "plan": digest,
            "shard": "0",
            "start": "0",
            "stop": "2",
            "keys": json.dumps(["k0", "k1"]),
            "skips": "[]",
        },
    )
    index = {
        **plan,
        "plan_digest": digest,
        "samples": 2,
        "skipped": {"count": 0, "by_reason": {}, "indices": []},
        "shards": [
            {"file": f"{layout.SHARD_DIR}/{shard.name}", "start": 0, "stop": 2, "samples": 2, "sha256": file_sha256(shard)}
        ],
    }
    write_json_atomically(folder / layout.INDEX_FILE, index)
    return index
