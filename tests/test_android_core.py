"""The Android app's Kotlin core (examples/android/core) against the Python reference client.

1. The core's JUnit suite runs on the JVM against a bundle exported in this session: golden ids,
   golden pixels (within 1/255), golden top-5, the search index, and tampered copies refused.
2. End to end through the real model: the core prepares token ids and pixel tensors, the
   bundle's fp32 `.pte` runs them in the ExecuTorch runtime, and the embeddings equal the
   reference client's; the core's classification of the demo test pictures agrees with the
   client's top-1. The figures are printed and written to `android_end_to_end.json` beside the
   bundle.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from android_inputs import demo_images, texts_per_language, write_pictures
from android_jvm import core_classpath, prepared_inputs, run_junit, run_tool
from export_fixtures import shared_bundle
from script_modules import load_script

DEMO_PICTURES = 200
MIN_COSINE = 0.999


def _client_module():
    return load_script("examples/python/bundle_client.py", "bundle_client")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder, _, _ = shared_bundle(tmp_path_factory)
    return folder


@pytest.fixture(scope="module")
def classpath():
    return core_classpath()


def test_junit_suite_passes_against_the_exported_bundle(bundle, classpath):
    done = run_junit(bundle)
    output = done.stdout + done.stderr
    summary = re.search(r"^(OK \(\d+ tests\)|Tests run: \d+,\s+Failures: \d+)", output, re.MULTILINE)
    assert done.returncode == 0 and summary and summary.group(1).startswith("OK"), output[-6000:]
    assert int(re.search(r"OK \((\d+) tests\)", output).group(1)) >= 30
    print(f"\nJUnit (examples/android/core): {summary.group(1)}")


def _listed_bytes(manifest: dict, path: str) -> int:
    return sum(entry["bytes"] for entry in manifest["files"] if entry["path"] == path or entry["path"].startswith(path + "/"))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_kotlin_inputs_through_the_pte_match_the_python_client(bundle, classpath, tmp_path):
    client_module = _client_module()
    client = client_module.BundleClient(bundle)
    manifest = client.manifest
    length, size = manifest["text"]["max_length"], manifest["image"]["size"]
    texts = texts_per_language()
    flat = [(lang, text) for lang, items in texts.items() for text in items]
    pictures = write_pictures(tmp_path / "pictures")
    demo = demo_images(tmp_path / "pictures", DEMO_PICTURES)
    request = {
        "texts": [{"text": text, "lang": lang} for lang, text in flat],
        "pictures": [p["request"] for p in pictures] + [{"file": path.name} for path in demo],
    }
    out = tmp_path / "prepared"
    run_tool(classpath, "prepare", bundle, request, tmp_path / "pictures", out)
    ids, pixels = prepared_inputs(out, length, size)
    assert ids.shape == (len(flat), length) and pixels.shape == (len(pictures) + len(demo), 3, size, size)

    # token ids: identical, text by text
    reference_ids = client.token_ids([text for _, text in flat])
    differing = [flat[i] for i in range(len(flat)) if not np.array_equal(ids[i], reference_ids[i])]
    assert not differing, f"{len(differing)} texts tokenized differently, first: {differing[0]!r}"
    text_cosine = _cosines(client.embed_ids(ids), np.stack([client.text_embedding(text) for _, text in flat]))

    # pixels: within 1/255 of the client's own preprocessing of each file; embeddings by cosine
    paths = [p["path"] for p in pictures] + demo
    reference_pixels = client.pixel_inputs(paths)
    pixel_diff = np.abs(pixels - reference_pixels).reshape(len(paths), -1).max(axis=1)
    too_far = [(str(paths[i].name), float(pixel_diff[i])) for i in np.flatnonzero(pixel_diff > 1 / 255 + 1e-6)]
    assert not too_far, f"pixel tensors beyond 1/255: {too_far[:5]}"
    kotlin_image = client.embed_pixels(pixels)
    image_cosine = _cosines(kotlin_image, client.embed_pixels(reference_pixels))
    assert text_cosine.min() > MIN_COSINE and image_cosine.min() > MIN_COSINE

    # classification: the core's top-1 (its pixels, the .pte, its classifier) against the client's, per label set
    embeddings = tmp_path / "demo_embeddings.f32"
    kotlin_image[len(pictures) :].astype("<f4").tofile(embeddings)
    label_sets = [{"set": entry["set"], "lang": entry["lang"]} for entry in manifest["labels"]]
    ranked_file = tmp_path / "classified.json"
    run_tool(
        classpath, "classify", bundle, {"embeddings": embeddings.name, "label_sets": label_sets, "top": 5}, tmp_path, ranked_file
    )
    ranked = json.loads(ranked_file.read_text(encoding="utf-8"))
    agreement = {}
    for entry in label_sets:
        key = f"{entry['set']}.{entry['lang']}"
        ours = [rows[0]["index"] for rows in ranked[key]]
        theirs = [client.classify(client_module.load_picture(path), entry["set"], entry["lang"], 1)[0]["index"] for path in demo]
        agreement[key] = sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(demo)
    figures = {
        "texts": {lang: len(items) for lang, items in texts.items()},
        "token_ids_identical": len(flat),
        "pictures": len(pictures),
        "picture_kinds": sorted({p["kind"] for p in pictures}),
        "demo_pictures": len(demo),
        "pixels_exact": int((pixel_diff == 0).sum()),
        "worst_pixel_difference": float(pixel_diff.max()),
        "worst_text_cosine": float(text_cosine.min()),
        "worst_image_cosine": float(image_cosine.min()),
        "top1_agreement": agreement,
        "bundle_bytes": sum(entry["bytes"] for entry in manifest["files"]),
        "executorch_model_bytes": {
            m["file"]: _listed_bytes(manifest, m["file"]) for m in manifest["models"] if m["target"] == "executorch"
        },
    }
    (bundle.parent / "android_end_to_end.json").write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    print(
        "\nAndroid core end to end: " + json.dumps({k: v for k, v in figures.items() if k != "picture_kinds"}, ensure_ascii=False)
    )
    assert min(agreement.values()) == 1.0, agreement
    assert all(len(items) >= 50 for items in texts.values())


def test_tampered_bundles_are_refused_by_the_core_and_the_client(bundle, classpath, tmp_path):
    client_module = _client_module()
    cases = {}
    flipped = tmp_path / "flipped"
    shutil.copytree(bundle, flipped)
    model = flipped / "text_encoder.pte"
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0x10
    model.write_bytes(bytes(data))
    cases["flipped byte"] = (flipped, "altered")
    extra = tmp_path / "extra"
    shutil.copytree(bundle, extra)
    (extra / "labels" / "extra.json").write_text("{}", encoding="utf-8")
    cases["extra file"] = (extra, "not listed")
    escaping = tmp_path / "escaping"
    shutil.copytree(bundle, escaping)
    manifest = json.loads((escaping / "manifest.json").read_text(encoding="utf-8"))
    manifest["labels"][0]["file"] = "../" + manifest["labels"][0]["file"]
    (escaping / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    cases["'../' path"] = (escaping, "..")
    for name, (folder, word) in cases.items():
        request = {"texts": [{"text": "a photo", "lang": "en"}]}
        request_path = tmp_path / f"{folder.name}.json"
        request_path.write_text(json.dumps(request), encoding="utf-8")
        done = subprocess.run(
            [
                "java",
                "-cp",
                classpath,
                "dev.compress.core.tools.PrepareInputs",
                "prepare",
                str(folder),
                str(request_path),
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2 and word in done.stderr, (name, done.stderr)
        with pytest.raises(client_module.BundleClientError, match=re.escape(word)):
            client_module.BundleClient(folder)
