"""The losses of the latest steps, held on the training device until they are read in one transfer.

Reading a loss with `.item()` or `float()` makes the host wait for the device to finish the step;
on a GPU one wait per step costs more than the rest of the loop's bookkeeping. The trainer logs
each step's entry here with its loss tensors, and `flush` (every `log_every` steps, and before
anything reads the loss log) fills their values into the entries with one device-to-host copy
and checks that they are finite.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from compress.errors import CompressError


class PendingLosses:
    """Loss-log entries whose `loss` and loss-term values are still tensors on the device."""

    def __init__(self) -> None:
        self._entries: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        self._values: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: dict[str, Any], loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """Hold `loss` and `terms` (0-d tensors) for `entry`, a dict of the loss log, until the next flush."""
        self._entries.append((entry, ("loss", *terms)))
        self._values.append(torch.stack([loss.detach().float(), *(t.detach().float() for t in terms.values())]))

    def flush(self) -> dict[str, Any] | None:
        """Write the held values into their entries (one host sync); the last entry, or None when none was held.

        Raises CompressError naming the first step whose loss is not finite.
        """
        if not self._entries:
            return None
        values = iter(torch.cat(self._values).tolist())
        entries = [entry for entry, _ in self._entries]
        for entry, keys in self._entries:
            for key in keys:
                entry[key] = next(values)
        self._entries, self._values = [], []
        for entry in entries:
            if not math.isfinite(entry["loss"]):
                raise CompressError(
                    f"stage {entry['stage']}, global step {entry['global_step']}: the loss is {entry['loss']}"
                    " (lower the learning rate or check the data)"
                )
        return entries[-1]
