"""The written models that can run on this machine, for parity checks and golden outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from compress.bundle.plugins import runner
from compress.protocols import Target

Runner = Callable[[torch.Tensor], torch.Tensor]


class Runners:
    """`(target, tower, precision) -> callable` for every model entry whose target can load it here."""

    def __init__(self, folder: Path, models: Sequence[dict], targets: Sequence[Target]):
        by_name = {t.name: t for t in targets}
        self.order = [t.name for t in targets]
        self.first_precision: dict[tuple[str, str], str] = {}
        self._runners: dict[tuple[str, str, str], Runner] = {}
        for entry in models:
            self.first_precision.setdefault((entry["target"], entry["tower"]), entry["precision"])
            loaded = runner(by_name[entry["target"]], folder / entry["file"])
            if loaded is not None:
                self._runners[(entry["target"], entry["tower"], entry["precision"])] = loaded

    def get(self, target: str, tower: str, precision: str) -> Runner | None:
        return self._runners.get((target, tower, precision))

    def __bool__(self) -> bool:
        return bool(self._runners)

    def reference_target(self) -> str | None:
        """The first target (in export order) whose fp32 image and text models both run here."""
        for name in self.order:
            if self.get(name, "image", "fp32") and self.get(name, "text", "fp32"):
                return name
        return None

    def precisions(self, target: str, tower: str) -> list[str]:
        return [p for (t, w, p) in self._runners if t == target and w == tower]


def run_rows(run: Runner, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """`[N, D]` float32: `run` on each `[1, ...]` input."""
    return torch.cat([run(x).float().reshape(1, -1) for x in inputs])
