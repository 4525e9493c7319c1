"""Tower exports in worker processes (`ExportSettings.workers`): the same bundle as in one process."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from export_fixtures import build_tiny_student, train_tiny_tokenizer, with_small_image_tower
from plugin_fixtures import install_distribution

from compress.bundle import ExportSettings, export_bundle
from compress.demo_world import open_demo
from compress.errors import CompressError
from targets.executorch_target import PteModule

CRASHING_TARGET = '''
import os


class CrashingTarget:
    """Ends its process in the middle of an export, as the kernel's out-of-memory killer would."""

    name = "crashing"
    suffix = ".bin"

    def precisions(self, quantize, requested=None):
        return ["fp32"]

    def export_tower(self, job, folder):
        os._exit(9)
'''


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    return with_small_image_tower(build_tiny_student(train_tiny_tokenizer(root)))


@pytest.fixture(scope="module")
def samples():
    return list(open_demo("train", size=24))


def _export(student, samples, folder, workers):
    return export_bundle(
        student,
        folder,
        targets=("executorch",),
        quantize="int8",
        label_sets=("demo-shape",),
        calibration_samples=samples[:16],
        parity_samples=samples[16:],
        parity_count=4,
        zero_shot_count=8,
        workers=workers,
    )


def test_two_worker_processes_write_the_bundle_one_process_writes(student, samples, tmp_path):
    alone = _export(student, samples, tmp_path / "one", workers=1)
    pooled = _export(student, samples, tmp_path / "two", workers=2)
    manifests = [json.loads((r.folder / "manifest.json").read_text(encoding="utf-8")) for r in (alone, pooled)]
    assert manifests[0]["models"] == manifests[1]["models"]  # same entries, in the same order
    assert [m["precision"] for m in manifests[1]["models"]] == ["fp32", "fp32", "int8", "int8"]
    golden = json.loads((alone.folder / "golden.json").read_text(encoding="utf-8"))
    examples = {"image": torch.rand(1, 3, 64, 64), "text": torch.tensor([golden["texts"][0]["ids"]])}
    for model in manifests[0]["models"]:
        # The same program, not the same bytes: the flatbuffer's order can follow string hashes,
        # which differ between processes.
        ran = [PteModule(r.folder / model["file"])(examples[model["tower"]]) for r in (alone, pooled)]
        assert torch.equal(ran[0], ran[1]), model["file"]
    assert alone.passed and pooled.passed
    one, two = alone.data["seconds"], pooled.data["seconds"]
    assert {"executorch fp32", "executorch int8"} <= set(one) & set(two)
    assert "models, wall clock (2 processes)" in two and not any(key.startswith("models, wall clock") for key in one)


def test_a_worker_process_that_dies_is_an_error_naming_its_job(student, samples, tmp_path, monkeypatch):
    site = install_distribution(
        tmp_path / "site",
        "crashing-target",
        "crashing_target",
        textwrap.dedent(CRASHING_TARGET),
        "compress.targets",
        {"crashing": "CrashingTarget"},
    )
    monkeypatch.syspath_prepend(str(site))  # the spawned workers start with this process's sys.path
    with pytest.raises(CompressError, match=r"the export process running crashing fp32 \((image|text)\) ended without a result"):
        export_bundle(
            student,
            tmp_path / "bundle",
            targets=("crashing",),
            label_sets=("demo-shape",),
            parity_samples=samples[:4],
            parity_count=4,
            zero_shot_count=0,
            workers=2,
        )
    assert not (tmp_path / "bundle").exists()  # nothing half-written is left as a bundle


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_whole_number_of_processes(workers):
    with pytest.raises(CompressError, match="workers must be a whole number of processes, at least 1"):
        ExportSettings(workers=workers)
