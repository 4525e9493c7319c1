"""The reference client (examples/python/bundle_client.py) on a real exported bundle.

It must agree with `compress predict`, reproduce the golden token ids and embeddings, and import
nothing from compress: it is the tested specification of what the phone apps do.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.commands.predict import predict
from compress.demo_world import task_samples
from students.bilingual import BilingualStudent
from export_fixtures import shared_bundle

CLIENT = Path(__file__).resolve().parents[1] / "examples" / "python" / "bundle_client.py"


def load_client_module():
    spec = importlib.util.spec_from_file_location("bundle_client", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return shared_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def client_module():
    return load_client_module()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> list[Path]:
    """Demo test pictures plus two of other sizes and modes (a wide RGBA and a tall grayscale)."""
    folder = tmp_path_factory.mktemp("pictures")
    paths = []
    images, _ = task_samples("color", count=4)
    for i, image in enumerate(images):
        paths.append(folder / f"demo_{i}.png")
        image.save(paths[-1])
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 120, 4), dtype=np.uint8), "RGBA").save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 256, (150, 70), dtype=np.uint8), "L").save(folder / "tall.png")
    return paths + [folder / "wide.png", folder / "tall.png"]


def test_client_imports_nothing_from_compress():
    tree = ast.parse(CLIENT.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "argparse", "hashlib", "json", "sys", "pathlib", "numpy", "sentencepiece", "torch", "executorch", "PIL"}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_client_agrees_with_predict(exported, client_module, pictures, precision):
    bundle = exported[0]
    client = client_module.BundleClient(bundle, precision=precision)
    for path in pictures:
        for label_set, lang in (("demo-color", "zh"), ("demo-shape", "en")):
            ours = client.classify(client_module.load_picture(path), label_set, lang, top=8)
            theirs = predict(str(bundle), str(path), label_set, lang, top=8, precision=precision)
            assert [r["class"] for r in ours] == [r["class"] for r in theirs]
            assert np.allclose([r["probability"] for r in ours], [r["probability"] for r in theirs], atol=1e-5)
            assert np.allclose([r["cosine"] for r in ours], [r["cosine"] for r in theirs], atol=1e-5)


def test_client_reproduces_golden_ids_and_embeddings(exported, client_module):
    bundle, run_dir, _ = exported
    client = client_module.BundleClient(bundle)
    assert client.check_golden() == []
    golden = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    assert {item["lang"] for item in golden["texts"]} == {"en", "zh"}
    student = BilingualStudent.from_pretrained(run_dir / "student")
    for item in golden["texts"]:
        assert item["ids"] == student.tokenize([item["text"]])[0].tolist()
        assert len(item["ids"]) == 16 and item["ids"][0] == 2
    long_text = "一个红色的大圆形在左边，" * 10
    assert client.tokenize(long_text)[0].tolist() == student.tokenize([long_text])[0].tolist()  # truncated, still ends in eos
    assert client.tokenize(long_text)[0, -1] == 3


def test_golden_check_catches_a_different_tokenizer(exported, client_module, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    golden = json.loads((copy / "golden.json").read_text(encoding="utf-8"))
    golden["texts"][0]["ids"][1] += 1
    (copy / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    client = client_module.BundleClient(copy, verify=False)
    problems = client.check_golden()
    assert len(problems) == 1 and "token ids" in problems[0]
    with pytest.raises(client_module.BundleClientError, match=r"golden\.json: altered"):
        client_module.BundleClient(copy)


def test_client_command_line_runs_standalone(exported, pictures):
    """In a fresh interpreter: no compress module gets imported, golden check and classification work."""
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['bundle_client.py', '--bundle', {str(exported[0])!r}, '--check-golden',"
        f" '--image', {str(pictures[0])!r}, '--labels', 'demo-shape', '--lang', 'zh', '--top', '3', '--json']\n"
        "try:\n"
        f"    runpy.run_path({str(CLIENT)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('compress', 'students', 'targets', 'teachers'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "golden: ok"
    rows = json.loads("\n".join(lines[1:]))
    assert [r["rank"] for r in rows] == [1, 2, 3]
