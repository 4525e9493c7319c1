"""The training position and logs: everything a checkpoint needs besides tensors, as plain JSON data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Where a run stands.

    `epoch` and `position` locate the data: `position` is how many indices of this epoch's seeded
    permutation have been consumed, so a resumed run continues with the very next sample.
    `loss_log` holds one entry per optimizer step across both stages (the loss curve).
    """

    stage: str | None = None  # the stage in progress; None between stages
    completed_stages: list[str] = field(default_factory=list)
    epoch: int = 0
    position: int = 0
    stage_step: int = 0
    global_step: int = 0
    loss_log: list[dict[str, Any]] = field(default_factory=list)
    epochs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per stage, one entry per epoch
    seconds: dict[str, float] = field(default_factory=dict)  # training time per stage, across resumes
    samples: dict[str, int] = field(default_factory=dict)  # samples trained on per stage
    # (source, key, reason) of every image that failed to decode during training, each once
    decode_skips: list[list[str]] = field(default_factory=list)
    epoch_left_out: int = 0  # samples of the current epoch left out so far (skipped), for its log entry
    resumed_from: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A snapshot of every field; equal to `dataclasses.asdict(self)`, without its per-value deepcopy
        (which made each checkpoint of a long run cost seconds for the loss log alone)."""
        return {f.name: _copy_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def begin_stage(self, stage: str) -> None:
        self.stage, self.epoch, self.position, self.stage_step = stage, 0, 0, 0
        self.epoch_left_out = 0
        self.epochs.setdefault(stage, [])
        self.seconds.setdefault(stage, 0.0)
        self.samples.setdefault(stage, 0)

    def finish_stage(self) -> None:
        self.completed_stages.append(self.stage)
        self.stage = None

    def note_skips(self, skips, left_out: int) -> None:
        """Record a batch's decoding failures (each sample once per run) and how many samples it lacked."""
        self.epoch_left_out += left_out
        if not skips:
            return
        known = {tuple(entry[:2]) for entry in self.decode_skips}
        for source, key, reason in skips:
            if (source, key) not in known:
                self.decode_skips.append([source, key, reason])
                known.add((source, key))

    def record_step(self, stage: str, samples: int, lr: float) -> dict[str, Any]:
        """Count one optimizer step of `stage` and log it; the entry's `loss` and loss terms are filled
        in when the trainer reads them off the device (`PendingLosses.flush`)."""
        self.samples[stage] += samples
        self.stage_step += 1
        self.global_step += 1
        entry = {
            "global_step": self.global_step,
            "stage": stage,
            "epoch": self.epoch,
            "stage_step": self.stage_step,
            "loss": None,
            "lr": lr,
            "samples": samples,
        }
        self.loss_log.append(entry)
        return entry

    def steps_of(self, stage: str, epoch: int | None = None) -> list[dict[str, Any]]:
        return [e for e in self.loss_log if e["stage"] == stage and (epoch is None or e["epoch"] == epoch)]


_SCALARS = (str, int, float, bool, type(None))


def _copy_json(value: Any) -> Any:
    """A copy of JSON-like data: new dicts, lists and tuples; scalars (immutable) are shared."""
    if isinstance(value, dict):
        return {key: item if isinstance(item, _SCALARS) else _copy_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(item if isinstance(item, _SCALARS) else _copy_json(item) for item in value)
    return value
