"""The reference client (examples/python/bundle_client.py) on a real exported bundle.

It must agree with `compress predict`, reproduce the golden token ids and embeddings, and import
nothing from compress: it is the tested specification of what the phone apps do.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import shared_bundle
from PIL import Image
from script_modules import load_script

from compress.commands.predict import predict
from compress.demo_world import task_samples
from students.bilingual import BilingualStudent

CLIENT = Path(__file__).resolve().parents[1] / "examples" / "python" / "bundle_client.py"


def load_client_module():
    return load_script(CLIENT, "bundle_client")


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
    assert imported <= {
        "__future__",
        "argparse",
        "collections",
        "contextlib",
        "hashlib",
        "io",
        "json",
        "math",
        "os",
        "sys",
        "tempfile",
        "pathlib",
        "numpy",
        "sentencepiece",
        "torch",
        "executorch",
        "PIL",
    }


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
    assert client_module.BundleClient(bundle, precision="int8").check_golden() == []  # against embedding_int8
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
    # the ids differ, and the model run on the edited ids no longer gives the golden embedding
    assert len(problems) == 2 and "token ids" in problems[0] and "text embedding of 'a photo of a cat.'" in problems[1]
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
    assert result.stderr == ""  # the runtime's import notice and cpuinfo probe stay off the console
    lines = result.stdout.splitlines()
    assert lines[0] == "golden: ok"
    rows = json.loads("\n".join(lines[1:]))
    assert [r["rank"] for r in rows] == [1, 2, 3]


def test_runtime_output_is_dropped_unless_verbose_and_replayed_when_loading_fails(client_module, capfd):
    def speak(text):
        os.write(2, f"native {text}\n".encode())
        print(f"python {text}", file=sys.stderr)

    with client_module.runtime_output():
        speak("quiet")
    with client_module.runtime_output(verbose=True):
        speak("verbose")
    with pytest.raises(RuntimeError, match="load failed"):
        with client_module.runtime_output():
            speak("failing")
            raise RuntimeError("load failed")
    err = capfd.readouterr().err
    assert "quiet" not in err
    assert "native verbose\npython verbose\n" in err
    assert "native failing\n" in err and "python failing\n" in err


def _edit_golden(folder: Path, edit) -> None:
    golden = json.loads((folder / "golden.json").read_text(encoding="utf-8"))
    edit(golden)
    (folder / "golden.json").write_text(json.dumps(golden), encoding="utf-8")


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda g: g["images"][0]["embedding"].reverse(), r"image embedding of golden/image_0\.png: cosine"),
        (lambda g: g["texts"][2]["embedding_int8"].reverse(), None),  # an fp32 client checks fp32 embeddings only
        (lambda g: g["images"][1]["top5"]["demo-shape.zh"].reverse(), r"top-5 of golden/image_1\.png for demo-shape\.zh"),
    ],
)
def test_golden_check_catches_wrong_embeddings_and_top5(exported, client_module, tmp_path, edit, problem):
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    _edit_golden(copy, edit)
    problems = client_module.BundleClient(copy, verify=False).check_golden()
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and re.match(problem, problems[0]), problems


def test_golden_check_catches_other_pixels(exported, client_module, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    pixels = np.fromfile(copy / "golden" / "image_1.pixels.f32", dtype="<f4")
    pixels[100] += 2.0 / 255.0  # beyond the 1/255 a resampler's rounding may cost
    pixels.astype("<f4").tofile(copy / "golden" / "image_1.pixels.f32")
    problems = client_module.BundleClient(copy, verify=False).check_golden()
    assert any(
        re.match(r"pixels of golden/image_1\.png differ from golden/image_1\.pixels\.f32 by up to 0\.0078", p) for p in problems
    )


def _tamper_flip(folder: Path) -> None:
    path = folder / "text_encoder.pte"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _tamper_extra(folder: Path) -> None:
    (folder / "golden" / "extra.bin").write_bytes(b"\0")


def _manifest_edit(edit):
    def tamper(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        edit(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    return tamper


def _tamper_link_out(folder: Path) -> None:
    outside = folder.parent / "outside"
    outside.mkdir()
    shutil.move(folder / "labels", outside / "labels")
    (folder / "labels").symlink_to(outside / "labels", target_is_directory=True)


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (_tamper_flip, r"text_encoder\.pte: altered"),
        (_tamper_extra, r"golden/extra\.bin: not listed in manifest\.json"),
        (
            _manifest_edit(lambda m: m["labels"][0].update(file="../labels/x.json")),
            r"labels\[0\]\.file '\.\./labels/x\.json' climbs out",
        ),
        (
            _manifest_edit(lambda m: m["text"].update(tokenizer_json="/tmp/tokenizer.json")),
            r"text\.tokenizer_json '/tmp/tokenizer\.json' is absolute",
        ),
        (_manifest_edit(lambda m: m["models"][0].update(file="a\\b.pte")), r"models\[0\]\.file 'a\\\\b\.pte' holds a backslash"),
        (_manifest_edit(lambda m: m.update(schema_version=1)), r"schema_version 1 is not one this client reads \(2\)"),
        (_manifest_edit(lambda m: m.update(schema_version=7)), r"schema_version 7 is not one this client reads"),
        (_tamper_link_out, r"labels/.*resolves outside the bundle folder|labels: a symbolic link"),
    ],
)
def test_client_refuses_tampered_bundles_with_the_reason(exported, client_module, tmp_path, tamper, reason):
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    tamper(copy)
    with pytest.raises(client_module.BundleClientError, match=reason):
        client_module.BundleClient(copy)
    assert client_module.main(["--bundle", str(copy), "--check-golden"]) == 2


def test_client_runs_inputs_prepared_elsewhere(exported, client_module, pictures):
    """What another client's end-to-end check calls: its ids and pixels through the bundle's models."""
    client = client_module.BundleClient(exported[0])
    texts = ["一张猫的照片。", "a photo of a red circle", ""]
    ids = client.token_ids(texts)
    assert ids.shape == (3, 16) and ids.dtype == np.int64
    embedded = client.embed_ids(ids)
    assert np.allclose(embedded, np.stack([client.text_embedding(t) for t in texts]), atol=1e-6)
    pixels = client.pixel_inputs(pictures[:3])
    assert pixels.shape == (3, 3, 64, 64) and pixels.dtype == np.float32
    images = client.embed_pixels(pixels)
    assert np.allclose(images[0], client.image_embedding(client_module.load_picture(pictures[0])), atol=1e-6)
    top = client.top_k(images[0], "demo-shape", "en", 3)
    assert top == client.classify(client_module.load_picture(pictures[0]), "demo-shape", "en", 3)


def test_golden_paths_are_checked_by_the_client(exported, client_module, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    _edit_golden(copy, lambda g: g["images"][0].update(pixels="../../pixels.f32"))
    with pytest.raises(client_module.BundleClientError, match=r"images\[0\]\.pixels '\.\./\.\./pixels\.f32' climbs out"):
        client_module.BundleClient(copy, verify=False).check_golden()
