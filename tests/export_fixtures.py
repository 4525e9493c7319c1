"""Shared pieces for the quantization, target, bundle and client tests.

Exporting MobileViT through ExecuTorch or Core ML takes minutes on two shared cores, so the test
bundle is exported from a real `BilingualStudent` (real text tower, tokenizer, preprocessing and
save/load path) whose image tower is swapped for `SmallConvTower`, a few-layer conv net of the
same contract. MobileViT's own export is measured by bench/export.py. The bundle is built once
per test session (under pytest's session temp folder) and shared by test_bundle and test_client.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from compress.demo_world import open_demo

TINY_TEXT = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16}
EMBED_DIM = 32
IMAGE_SIZE = 64
LABEL_SETS = ("demo-shape", "demo-color")
LOGIT_SCALE = 50.0


class SmallConvTower(nn.Module):
    """Pixels `[N, 3, S, S]` -> `[N, D]`: two strided conv-BN-ReLU blocks, pooling, a projection."""

    def __init__(self, embed_dim: int, image_size: int = IMAGE_SIZE, width: int = 16):
        super().__init__()
        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.projection = nn.Linear(2 * width, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features(pixels))


def demo_captions(count: int = 200) -> list[str]:
    return [caption for caption, _ in open_demo("train", size=count).captions()]


def train_tiny_tokenizer(folder: Path) -> Path:
    from students.tokenizer import train_tokenizer

    path = folder / "tokenizer.model"
    train_tokenizer(demo_captions(), path, vocab_size=800)
    return path


def build_tiny_student(tokenizer_path: Path):
    """A real bilingual student (mobilevitv2_050 at 64 px, one-layer text tower), random weights."""
    from students.bilingual import build_bilingual_student

    torch.manual_seed(0)
    student = build_bilingual_student(
        {
            "embed_dim": EMBED_DIM,
            "image": {"model": "mobilevitv2_050", "image_size": IMAGE_SIZE},
            "text": TINY_TEXT,
            "tokenizer": str(tokenizer_path),
        }
    )
    return student.eval()


def with_small_image_tower(student):
    torch.manual_seed(1)
    student.image_tower = SmallConvTower(student.embed_dim).eval()
    return student


def make_run_dir(root: Path) -> Path:
    """A run folder as the Distiller leaves it: student/ (save_pretrained) and report.json."""
    run_dir = root / "run"
    student = build_tiny_student(train_tiny_tokenizer(root))
    student.save_pretrained(run_dir / "student")
    (run_dir / "report.json").write_text(json.dumps({"name": "run", "logit_scale": LOGIT_SCALE}), encoding="utf-8")
    return run_dir


def shared_bundle(tmp_path_factory) -> tuple[Path, Path, str]:
    """(bundle folder, run folder, console output) of `compress export` run once per session.

    The CLI loads the saved student through `build_student`; the image tower of the loaded student
    is then swapped (see the module docstring).
    """
    root = tmp_path_factory.getbasetemp() / "shared_bundle"
    bundle, log = root / "bundle", root / "export.log"
    if (bundle / "manifest.json").is_file():
        return bundle, root / "run", log.read_text(encoding="utf-8")
    root.mkdir(exist_ok=True)
    run_dir = make_run_dir(root)
    from compress import cli
    from compress.api import build_student
    from compress.commands import export as export_command

    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        patch.setattr(export_command, "build_student", lambda folder: with_small_image_tower(build_student(folder)))
        code = cli.main(
            [
                "export",
                "--checkpoint",
                str(run_dir),
                "--out",
                str(bundle),
                "--targets",
                "executorch,coreml",
                "--quantize",
                "int8",
                "--labels",
                ",".join(LABEL_SETS),
                "--calibration-count",
                "8",
                "--parity-count",
                "8",
                "--zero-shot-count",
                "16",
            ]
        )
    assert code == 0, output.getvalue()
    log.write_text(output.getvalue(), encoding="utf-8")
    return bundle, run_dir, output.getvalue()
