"""A third-party export target, installed as its own distribution, used by `compress export --targets`.

The plugin lives in a temporary folder with a `*.dist-info` holding `entry_points.txt`, exactly what
`pip install` leaves in site-packages; `importlib.metadata` finds it on `sys.path` (PYTHONPATH
for the command line). It writes each tower as a `torch.export` program (`.pt2`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_fixtures import install_distribution

from compress import registry
from compress.bundle import load_bundle
from compress.bundle.plugins import load_target
from compress.errors import CompressError

REPO = Path(__file__).resolve().parents[1]
PLUGIN = '''
"""Towers as torch.export programs (.pt2), loadable with torch.export.load."""

from pathlib import Path

import torch


class ExportedProgramTarget:
    """torch.export programs, fp32."""

    name = "pt2"
    suffix = ".pt2"

    def precisions(self, quantize, requested=None):
        if requested and list(requested) != ["fp32"]:
            raise ValueError(f"pt2 writes fp32 only, not {requested}")
        return ["fp32"]

    def export_tower(self, job, folder):
        file = f"{job.tower}_encoder{self.suffix}"
        torch.export.save(torch.export.export(job.module, (job.example,)), Path(folder) / file)
        dtype = "float32" if job.example.is_floating_point() else "int64"
        return [{"target": self.name, "tower": job.tower, "precision": "fp32", "file": file,
                 "input": {"name": "pixels" if job.tower == "image" else "input_ids", "kind": "tensor",
                           "shape": list(job.example.shape), "dtype": dtype},
                 "output": job.output_spec()}]

    def load(self, path):
        module = torch.export.load(str(path)).module()
        return lambda value: module(value).detach()
'''
EXPORT = """
import sys
import pytest
from compress import cli
from compress.api import build_student
from compress.commands import export as export_command
from export_fixtures import with_small_image_tower

with pytest.MonkeyPatch.context() as patch:
    patch.setattr(export_command, "build_student", lambda folder: with_small_image_tower(build_student(folder)))
    sys.exit(cli.main(sys.argv[1:]))
"""


def install_plugin(site: Path) -> Path:
    """The package and its dist-info, as an installer would write them into `site`."""
    return install_distribution(
        site,
        "pt2-target",
        "pt2_target",
        textwrap.dedent(PLUGIN),
        "compress.targets",
        {"pt2": "ExportedProgramTarget"},
        version="0.1",
        package=True,
    )


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_an_installed_target_is_found_by_name(site):
    assert "pt2" in registry.names("targets")
    assert {name: dist for name, dist, _ in registry.describe("targets")}["pt2"] == "pt2-target"
    target = load_target("pt2")
    assert target.precisions("int8") == ["fp32"]
    from compress.bundle import export_bundle

    with pytest.raises(CompressError, match=r"export target 'pt2': precisions failed: ValueError: pt2 writes fp32 only"):
        export_bundle(object(), "unused", targets=("pt2",), precisions={"pt2": ("int8",)})
    with pytest.raises(CompressError, match="unknown target plugin 'onnx'; available: coreml, executorch, pt2"):
        load_target("onnx")


def test_compress_export_uses_the_plugin_end_to_end(site, tmp_path, tmp_path_factory):
    from export_fixtures import make_run_dir

    run_dir = make_run_dir(tmp_path)
    bundle = tmp_path / "bundle"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "tests"), str(REPO)])}
    command = [
        sys.executable,
        "-c",
        EXPORT,
        "export",
        "--checkpoint",
        str(run_dir),
        "--out",
        str(bundle),
        "--targets",
        "executorch,pt2",
        "--labels",
        "demo-shape",
        "--parity-count",
        "4",
        "--zero-shot-count",
        "8",
        "--workers",
        "2",  # the plugin is found by name in each worker process too
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    loaded = load_bundle(bundle)  # every file listed with its sha256, the manifest valid
    models = {(m["target"], m["tower"], m["precision"]): m for m in loaded.manifest["models"]}
    assert set(models) == {(t, tower, "fp32") for t in ("executorch", "pt2") for tower in ("image", "text")}
    listed = {entry["path"] for entry in loaded.manifest["files"]}
    assert {"image_encoder.pt2", "text_encoder.pt2"} <= listed
    report = json.loads((bundle / "export_report.json").read_text(encoding="utf-8"))
    checks = {c["name"]: c for c in report["checks"]}
    for tower in ("image", "text"):
        assert checks[f"pt2 {tower} fp32 max abs error vs eager"]["passed"]  # measured through the plugin's load()
    assert "pt2 fp32" in report["seconds"]
    assert {(z["target"], z["lang"]) for z in report["zero_shot"]} == {
        (t, lang) for t in ("executorch", "pt2") for lang in ("en", "zh")
    }
    assert "pt2 image fp32" in result.stdout
    unknown = [*command[: command.index("--out")], "--out", str(tmp_path / "b2"), "--targets", "pt2,tflite"]
    broken = subprocess.run(unknown, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert broken.returncode == 2 and "unknown target plugin 'tflite'; available: coreml, executorch, pt2" in broken.stderr


def test_no_library_module_imports_a_first_party_target():
    """compress (export, bundle, search) reaches targets only through the registry."""
    import ast

    offenders = []
    for path in sorted((REPO / "compress").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in names if name.split(".")[0] == "targets"]
    assert offenders == []
