"""Per-step losses stay on the device and are read every `log_every` steps, with the loss log still complete."""

from __future__ import annotations

import math

import pytest
import torch
from distill_helpers import ColourPairs, RandomTeacher, make_student

from compress.distill import Distiller
from compress.distill.step_log import PendingLosses
from compress.distill.targets import TeacherTargets
from compress.errors import CompressError


def _fit(run_dir, stage="both", targets=None, **options):
    distiller = Distiller(
        RandomTeacher(embed_dim=24),
        make_student(seed=0, embed_dim=16, dropout=0.0),
        data=ColourPairs(40),
        run_dir=run_dir,
        batch_size=4,
        steps={"distill": 9, "align": 7},
        stage2_losses={"infonce": 1.0, "affinity": 0.5},
        progress=False,
        targets=targets,
        **options,
    )
    return distiller.fit(stage)


def test_reading_losses_every_few_steps_logs_the_same_losses_as_reading_every_step(tmp_path, monkeypatch):
    reads = []
    original = PendingLosses.flush

    def counted(self):
        reads.append(len(self))
        return original(self)

    monkeypatch.setattr(PendingLosses, "flush", counted)
    every_step = _fit(tmp_path / "every", log_every=1)
    assert [n for n in reads if n] == [1] * 16
    reads.clear()
    batched = _fit(tmp_path / "batched", log_every=4)
    # Reads of 4 steps, and at each stage's end the rest: 9 = 4 + 4 + 1, 7 = 4 + 3.
    assert [n for n in reads if n] == [4, 4, 1, 4, 3]

    assert [e["global_step"] for e in batched["loss_log"]] == list(range(1, 17))
    for a, b in zip(every_step["loss_log"], batched["loss_log"], strict=True):
        assert a == b  # every step's loss and loss terms, as plain floats
        assert isinstance(b["loss"], float) and all(isinstance(b[k], float) for k in b if k.startswith(("feature", "infonce")))
    assert batched["stages"]["align"]["final_loss"] == every_step["stages"]["align"]["final_loss"]
    assert batched["stages"]["distill"]["seconds"] > 0


def test_a_checkpoint_reads_the_held_losses_first(tmp_path):
    from compress.distill import checkpoint as ckpt

    _fit(tmp_path, stage="distill", log_every=50, checkpoint_every=5)
    saved = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "checkpoints")[0], _probe_trainable(tmp_path / "probe")).state[
        "train"
    ]
    assert saved["global_step"] == 5
    assert [e["global_step"] for e in saved["loss_log"]] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(e["loss"]) for e in saved["loss_log"])


def _probe_trainable(run_dir):
    return Distiller(
        RandomTeacher(embed_dim=24),
        make_student(seed=0, embed_dim=16, dropout=0.0),
        data=ColourPairs(40),
        run_dir=run_dir,
        stage2_losses={"infonce": 1.0, "affinity": 0.5},
        progress=False,
    ).trainable


def test_a_non_finite_loss_is_an_error_naming_its_step_and_no_checkpoint_holds_it(tmp_path):
    teacher = RandomTeacher(embed_dim=24)
    online = TeacherTargets(teacher)
    calls = []

    def poisoned(samples):  # the teacher's embeddings turn to NaN from the 6th batch on
        calls.append(1)
        out = online(samples)
        return {k: (v * math.nan if len(calls) >= 6 and v is not None else v) for k, v in out.items()}

    with pytest.raises(CompressError, match=r"stage distill, global step 6: the loss is nan"):
        _fit(tmp_path, stage="distill", targets=poisoned, log_every=4, checkpoint_every=4)
    from compress.distill import checkpoint as ckpt

    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [ckpt.checkpoint_name(4)]


def test_pending_losses_fill_entries_in_order_with_one_read():
    pending = PendingLosses()
    entries = [{"stage": "align", "global_step": i, "loss": None} for i in (1, 2)]
    pending.add(entries[0], torch.tensor(1.5), {"infonce": torch.tensor(1.0), "affinity": torch.tensor(0.5)})
    pending.add(entries[1], torch.tensor(2.5, dtype=torch.float16), {"infonce": torch.tensor(2.0), "affinity": torch.tensor(0.5)})
    assert len(pending) == 2
    assert pending.flush() is entries[1]
    assert entries == [
        {"stage": "align", "global_step": 1, "loss": 1.5, "infonce": 1.0, "affinity": 0.5},
        {"stage": "align", "global_step": 2, "loss": 2.5, "infonce": 2.0, "affinity": 0.5},
    ]
    assert len(pending) == 0 and pending.flush() is None
