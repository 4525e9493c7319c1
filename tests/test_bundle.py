"""Bundles: `compress export` writes one, loading verifies it, BundleEncoder runs it, `predict` classifies."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from export_fixtures import LABEL_SETS, LOGIT_SCALE, shared_bundle, with_small_image_tower
from PIL import Image

from compress import cli
from compress.api import load_model as resolve_model
from compress.bundle import (
    BundleEncoder,
    BundleError,
    ExportSettings,
    available_label_sets,
    export_bundle,
    load_bundle,
    manifest_schema,
    resolve_label_set,
    validate_manifest,
)
from compress.bundle.preprocess import image_input
from compress.commands.export import resolve_checkpoint
from compress.commands.predict import predict
from compress.demo_world import open_demo, task_samples
from compress.errors import CompressError
from compress.eval.zeroshot import class_embeddings, zero_shot_logits
from students.bilingual import BilingualStudent


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return shared_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(exported):
    return exported[0]


@pytest.fixture(scope="module")
def student(exported):
    """The exported student: loaded from the run folder, image tower swapped as the export did."""
    return with_small_image_tower(BilingualStudent.from_pretrained(exported[1] / "student"))


@pytest.fixture
def copy_of(bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def test_export_writes_every_file_with_a_valid_manifest(bundle, exported):
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    validate_manifest(manifest)
    names = {entry["path"] for entry in manifest["files"]}
    for name in (
        "tokenizer.model",
        "tokenizer.json",
        "image_encoder.pte",
        "text_encoder.pte",
        "image_encoder.int8.pte",
        "text_encoder.int8.pte",
        "golden.json",
        "golden/image_0.png",
        "golden/image_0.pixels.f32",
        "golden/image_1.png",
        "golden/image_1.pixels.f32",
        "export_report.json",
        "labels/demo-shape.en.json",
        "labels/demo-shape.zh.json",
        "labels/demo-color.en.json",
        "labels/demo-color.zh.json",
    ):
        assert name in names, name
    for package in ("image_encoder", "image_encoder.int8", "text_encoder", "text_encoder.int8"):
        inside = [n for n in names if n.startswith(f"{package}.mlpackage/")]
        assert any(n.endswith("Manifest.json") for n in inside) and any(n.endswith("weight.bin") for n in inside)
    assert manifest["logit_scale"] == LOGIT_SCALE  # the run's learned scale, from report.json
    assert manifest["embed_dim"] == 32 and manifest["languages"] == ["en", "zh"]
    assert manifest["image"]["size"] == 64 and manifest["image"]["input"]["normalization"] == "inside_model"
    assert manifest["text"]["max_length"] == 16 and manifest["text"]["pad_id"] == 0
    assert manifest["schema_version"] == 2 and manifest["text"]["tokenizer_json"] == "tokenizer.json"
    models = {(m["target"], m["tower"], m["precision"]) for m in manifest["models"]}
    assert models == {("executorch", t, p) for t in ("image", "text") for p in ("fp32", "int8")} | {
        ("coreml", t, p) for t in ("image", "text") for p in ("fp16", "int8-weights")
    }
    for model in manifest["models"]:
        if model["target"] == "executorch":
            assert model["delegation"]["subgraphs"] >= 1 and model["delegation"]["heavy_ops_outside"] == []
    assert manifest["model_info"]["family"] == "bilingual"
    assert "bundle: size and parity" in exported[2]


def test_export_report_meets_parity(bundle):
    report = json.loads((bundle / "export_report.json").read_text(encoding="utf-8"))
    checks = {c["name"]: c for c in report["checks"]}
    for tower in ("image", "text"):
        assert checks[f"executorch {tower} fp32 max abs error vs eager"]["value"] <= 1e-4
        assert checks[f"executorch {tower} int8 mean cosine vs fp32"]["value"] >= 0.99
    assert not any(name.startswith("coreml") for name in checks) or sys.platform == "darwin"  # Core ML predicts on macOS only
    rows = {(r["target"], r["tower"], r["precision"]): r for r in report["models"]}
    assert rows[("executorch", "image", "int8")]["size_ratio"] > 1.0
    assert rows[("coreml", "text", "int8-weights")]["size_ratio"] > 1.0
    assert all(r["latency_ms"] > 0 for k, r in rows.items() if k[0] == "executorch")
    zero_shot = {(z["set"], z["lang"], z["target"]): z for z in report["zero_shot"]}
    assert set(zero_shot) == {(s, lang, "executorch") for s in LABEL_SETS for lang in ("en", "zh")}
    for (label_set, lang, _), row in zero_shot.items():
        top1 = row["top1"]
        assert row["count"] == 16 and set(top1) == {"fp32", "int8"} and all(0 <= v <= 1 for v in top1.values())
        assert row["drop_points"] == {"int8": pytest.approx(100 * (top1["fp32"] - top1["int8"]))}
        assert f"zero-shot top-1 drop {label_set} ({lang}) executorch int8, points" in checks
    assert report["passed"] == all(c["passed"] for c in report["checks"])
    assert list(report["seconds"])[:4] == ["executorch fp32", "executorch int8", "coreml fp16", "coreml int8-weights"]
    assert all(seconds > 0 for seconds in report["seconds"].values())


def test_label_files_hold_normalised_class_embeddings(bundle, student):
    loaded = load_bundle(bundle)
    for lang in ("en", "zh"):
        labels = loaded.labels("demo-shape", lang)
        embeddings = torch.tensor(labels["embeddings"])
        assert embeddings.shape == (len(labels["classnames"]), 32)
        assert torch.allclose(embeddings.norm(dim=1), torch.ones(len(embeddings)), atol=1e-5)
        expected = class_embeddings(student, labels["classnames"], labels["templates"], lang)
        assert torch.allclose(embeddings, expected, atol=1e-5)


def test_bundle_encoder_matches_the_student(bundle, student):
    data = open_demo("test", size=6)
    images, texts = [data[i].image for i in range(6)], [data[i].caption for i in range(6)]
    encoder = BundleEncoder(bundle)
    assert encoder.has_image_tower and encoder.has_text_tower and encoder.embed_dim == 32
    assert (encoder.encode_texts(texts, "en") - student.encode_texts(texts, "en")).abs().max() <= 1e-4
    assert (encoder.encode_images(images) - student.encode_images(images)).abs().max() <= 1e-4
    int8 = BundleEncoder(bundle, precision="int8")
    assert torch.nn.functional.cosine_similarity(int8.encode_images(images), encoder.encode_images(images)).mean() > 0.99
    with pytest.raises(CompressError, match="serves en, zh"):
        encoder.encode_texts(["x"], "fr")
    with pytest.raises(CompressError, match="unknown bundle precision"):
        BundleEncoder(bundle, precision="int4")


def test_bundle_preprocessing_follows_the_student_on_odd_pictures(student):
    rule = {"size": 64, "resize": "shorter_side_center_crop"}
    rng = np.random.default_rng(0)
    for size in ((97, 64), (64, 150), (200, 200)):
        picture = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert("RGB")
        ours = torch.from_numpy(image_input(picture, rule))
        mean, std = (
            torch.tensor(student.preprocessing.mean).view(1, 3, 1, 1),
            torch.tensor(student.preprocessing.std).view(1, 3, 1, 1),
        )
        theirs = student.preprocess_images([picture]) * std + mean  # back to [0, 1]
        assert ours.shape == theirs.shape == (1, 3, 64, 64)
        assert (ours - theirs).abs().mean() < 0.02  # Pillow and torchvision antialias slightly differently


def test_compress_eval_evaluates_a_bundle_like_any_encoder(bundle):
    encoder = resolve_model(str(bundle))
    assert isinstance(encoder, BundleEncoder)
    images, labels = task_samples("shape", count=8)
    labels_file = encoder.bundle.labels("demo-shape", "zh")
    logits = zero_shot_logits(encoder, images, labels_file["classnames"], labels_file["templates"], "zh")
    assert logits.shape == (8, len(labels_file["classnames"]))
    precomputed = torch.tensor(labels_file["embeddings"])
    assert torch.allclose(logits, encoder.encode_images(images) @ precomputed.T, atol=1e-4)


def test_compress_eval_command_scores_a_bundle_as_the_student_scores(bundle, student, tmp_path):
    from compress.eval.datasets import demo_task_set
    from compress.eval.runner import evaluate_models

    out = tmp_path / "eval"
    assert cli.main(["eval", "--model", str(bundle), "--dataset", "demo:shape", "--limit", "24", "--out", str(out)]) == 0
    data = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    (name,) = data["results"]
    eager = evaluate_models({"student": student}, [demo_task_set("shape", count=24)], ["en", "zh"])
    for lang in ("en", "zh"):
        # the fp32 programs match eager to 1e-4, so at most a near-tie may flip
        assert (
            abs(data["results"][name]["demo-shape"][lang]["top1"] - eager.value("student", "demo-shape", lang, "top1")) <= 1 / 24
        )
    assert (out / "demo-shape.en.png").is_file()


def test_predict_command_prints_the_top_classes(bundle, tmp_path, capsys):
    picture = tmp_path / "picture.png"
    task_samples("shape", count=1)[0][0].save(picture)
    assert (
        cli.main(
            ["predict", "--bundle", str(bundle), "--image", str(picture), "--labels", "demo-shape", "--lang", "zh", "--top", "3"]
        )
        == 0
    )
    table = capsys.readouterr().out
    zh_names = load_bundle(bundle).labels("demo-shape", "zh")["classnames"]
    assert sum(name in table for name in zh_names) == 3 and "probability" in table
    assert (
        cli.main(["predict", "--bundle", str(bundle), "--image", str(picture), "--labels", "demo-color", "--json", "--top", "20"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and [r["rank"] for r in rows] == list(range(1, 9))
    assert sum(r["probability"] for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert rows == sorted(rows, key=lambda r: -r["probability"])
    assert rows == predict(str(bundle), str(picture), "demo-color", "en", top=20)
    assert cli.main(["predict", "--bundle", str(bundle), "--image", str(picture), "--labels", "cifar-10"]) == 2
    assert "no label set 'cifar-10'" in capsys.readouterr().err
    assert cli.main(["predict", "--bundle", str(bundle), "--image", str(tmp_path / "none.png"), "--labels", "demo-shape"]) == 2


# Refusals: each names the file and the problem.


def test_missing_file_is_refused(copy_of, capsys):
    (copy_of / "labels" / "demo-color.zh.json").unlink()
    with pytest.raises(BundleError, match=r"demo-color\.zh\.json: missing"):
        load_bundle(copy_of)
    assert cli.main(["predict", "--bundle", str(copy_of), "--image", "x.png", "--labels", "demo-shape"]) == 2
    assert "demo-color.zh.json: missing" in capsys.readouterr().err


def test_altered_model_is_refused(copy_of):
    path = copy_of / "image_encoder.int8.pte"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"image_encoder\.int8\.pte: altered \(sha256"):
        BundleEncoder(copy_of)


def test_altered_file_inside_an_mlpackage_is_refused(copy_of):
    weights = copy_of / "text_encoder.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(BundleError, match=r"text_encoder\.mlpackage/Data/com\.apple\.CoreML/weights/weight\.bin: altered \("):
        load_bundle(copy_of)


def test_unknown_extra_file_is_refused(copy_of):
    (copy_of / "labels" / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(BundleError, match=r"notes\.txt: unknown file, not listed"):
        load_bundle(copy_of)


def test_a_listed_file_replaced_by_a_link_is_refused(copy_of, tmp_path):
    outside = tmp_path / "outside.model"
    shutil.copy(copy_of / "tokenizer.model", outside)
    (copy_of / "tokenizer.model").unlink()
    (copy_of / "tokenizer.model").symlink_to(outside)  # same bytes, but not inside the bundle
    with pytest.raises(BundleError, match=r"files\[\d+\]\.path 'tokenizer\.model' resolves outside the bundle folder"):
        load_bundle(copy_of)
    (copy_of / "tokenizer.model").unlink()
    shutil.move(outside, copy_of / "tokenizer.copy")
    (copy_of / "tokenizer.model").symlink_to(copy_of / "tokenizer.copy")  # inside, but still a link
    with pytest.raises(BundleError, match=r"tokenizer\.model: a symbolic link"):
        load_bundle(copy_of)


def test_label_sets_cover_demo_tasks_and_shipped_elevater_names():
    names = available_label_sets()
    assert names[:3] == ["demo-shape", "demo-color", "demo-color_shape"] and "cifar-10" in names
    cifar = resolve_label_set("CIFAR_10")  # ELEVATER folder spellings resolve too
    assert cifar.name == "cifar-10" and cifar.test_samples is None
    assert len(cifar.classnames["en"]) == len(cifar.classnames["zh"]) == 10
    assert all(t.count("{}") == 1 for lang in ("en", "zh") for t in cifar.templates[lang])
    shape = resolve_label_set("demo-shape")
    assert shape.languages == ("en", "zh")
    images, labels = shape.test_samples(6)
    assert len(images) == len(labels) == 6 and all(0 <= label < len(shape.classnames["en"]) for label in labels)
    with pytest.raises(CompressError, match="unknown label set 'demo-size'"):
        resolve_label_set("demo-size")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("embed_dim"), r"invalid manifest at \(top level\): 'embed_dim' is a required property"),
        (lambda m: m.update(logit_scale="big"), r"invalid manifest at logit_scale: 'big' is not of type 'number'"),
        (lambda m: m["files"][0].update(path="../outside.bin"), r"files\[0\]\.path '\.\./outside\.bin' climbs out of the bundle"),
        (lambda m: m["text"].update(tokenizer="/etc/passwd"), r"text\.tokenizer '/etc/passwd' is absolute"),
        (lambda m: m["models"][0].update(file="sub\\image_encoder.pte"), r"models\[0\]\.file .* holds a backslash"),
        (lambda m: m.update(golden="labels/../../golden.json"), r"golden '.*' climbs out of the bundle"),
        (lambda m: m.update(embedding_space="0" * 64), r"embedding_space does not match"),
        (lambda m: m.update(format="other-bundle"), r"not a compress-bundle manifest"),
        (lambda m: m["image"].update(resize="zoom"), r"invalid manifest at image/resize"),
        (lambda m: m.update(schema_version=1), r"schema_version 1 is not supported \(this compress reads 2\)"),
        (lambda m: m.update(schema_version=3), r"schema_version 3 is not supported"),
        (lambda m: m["models"][0].update(file="elsewhere.pte"), r"elsewhere\.pte is not in the file list"),
    ],
)
def test_invalid_manifest_is_refused(copy_of, edit, message):
    path = copy_of / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match=message):
        load_bundle(copy_of)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda g: g["images"][0].update(pixels="../elsewhere.f32"),
            r"golden\.json: images\[0\]\.pixels '\.\./elsewhere\.f32' climbs out",
        ),
        (lambda g: g["images"][1].update(file="/tmp/x.png"), r"golden\.json: images\[1\]\.file '/tmp/x\.png' is absolute"),
        (
            lambda g: g["images"][1].update(file="golden/other.png"),
            r"images\[1\]\.file golden/other\.png is not in the file list",
        ),
        (lambda g: g.update(version=1), r"golden\.json: not a compress-golden file of version 2"),
    ],
)
def test_golden_paths_and_version_are_checked(copy_of, edit, message):
    path = copy_of / "golden.json"
    golden = json.loads(path.read_text(encoding="utf-8"))
    edit(golden)
    path.write_text(json.dumps(golden), encoding="utf-8")
    with pytest.raises(BundleError, match=r"golden\.json: altered"):
        load_bundle(copy_of)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy_of, verify=False)  # the paths are checked even when the digests are not


def test_unreadable_or_absent_manifest_is_refused(copy_of, tmp_path):
    (copy_of / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="manifest.json: not valid JSON"):
        load_bundle(copy_of)
    (copy_of / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not a bundle"):
        load_bundle(copy_of)
    with pytest.raises(BundleError, match="no such bundle folder"):
        load_bundle(tmp_path / "absent")


def test_shipped_schema_is_a_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(manifest_schema())


def test_export_arguments_are_checked_before_any_work(exported, tmp_path, capsys):
    bundle, run_dir, _ = exported
    assert resolve_checkpoint(run_dir) == (run_dir / "student", LOGIT_SCALE)
    assert resolve_checkpoint(run_dir / "student") == (run_dir / "student", LOGIT_SCALE)
    with pytest.raises(CompressError, match="no such run or student folder"):
        resolve_checkpoint(tmp_path / "absent")
    with pytest.raises(CompressError, match="neither a student folder"):
        resolve_checkpoint(tmp_path)
    base = ["export", "--checkpoint", str(run_dir), "--out"]
    assert cli.main(base + [str(bundle)]) == 2
    assert "folder is not empty" in capsys.readouterr().err
    assert cli.main(base + [str(tmp_path / "b"), "--labels", "demo-size"]) == 2
    assert "unknown label set 'demo-size'; available: demo-shape, demo-color" in capsys.readouterr().err
    assert cli.main(base + [str(tmp_path / "b"), "--targets", "tflite"]) == 2
    assert "unknown target plugin 'tflite'; available: coreml, executorch" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_export_bundle_checks_its_inputs_before_any_work(student, tmp_path):
    held_out = [open_demo("test", size=2)[i] for i in range(2)]
    with pytest.raises(CompressError, match="executorch int8 export needs calibration samples"):
        export_bundle(student, tmp_path / "b", quantize="int8", calibration_samples=None, parity_samples=held_out)
    with pytest.raises(CompressError, match="unknown Core ML variant"):
        export_bundle(student, tmp_path / "b", targets=("coreml",), coreml_variants=("fp8",), parity_samples=held_out)
    with pytest.raises(CompressError, match="parity checks need held-out samples"):
        export_bundle(student, tmp_path / "b")
    with pytest.raises(CompressError, match="unknown quantization 'int4'"):
        export_bundle(student, tmp_path / "b", ExportSettings(quantize="int4"), parity_samples=held_out)
    with pytest.raises(CompressError, match="precisions given for target\\(s\\) coreml that are not exported"):
        ExportSettings(targets=("executorch",), precisions={"coreml": ("fp16",)})
    with pytest.raises(CompressError, match="unknown export setting\\(s\\) colour"):
        export_bundle(student, tmp_path / "b", colour="red", parity_samples=held_out)
    assert not (tmp_path / "b").exists()


def test_export_defaults_live_in_the_settings_module():
    from compress.bundle import settings
    from compress.commands import export as export_command

    parser = __import__("argparse").ArgumentParser()
    export_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["export", "--checkpoint", "c", "--out", "o"])
    assert args.targets == ",".join(settings.DEFAULT_TARGETS) and args.labels == ",".join(settings.DEFAULT_LABEL_SETS)
    assert (args.parity_count, args.zero_shot_count, args.calibration_count) == (
        settings.DEFAULT_PARITY_COUNT,
        settings.DEFAULT_ZERO_SHOT_COUNT,
        settings.DEFAULT_CALIBRATION_COUNT,
    )
    assert (args.parity_data, args.calibration) == (settings.DEFAULT_PARITY_DATA, settings.DEFAULT_CALIBRATION_DATA)
    default = ExportSettings()
    assert default.targets == settings.DEFAULT_TARGETS and default.scale == settings.DEFAULT_LOGIT_SCALE


def test_the_bundle_package_takes_no_defaults_from_the_demo_world_or_evaluation():
    """Only label-set resolution may name the demo world (it is the demo's label source); evaluation only for
    class-name catalogs."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "compress" / "bundle"
    for path in sorted(folder.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        demo = {m for m in imported if m.startswith("compress.demo_world")}
        evaluation = {m for m in imported if m.startswith("compress.eval")}
        assert not demo or path.name == "labels.py", (path.name, demo)
        assert evaluation <= {"compress.eval.catalog"}, (path.name, evaluation)
        assert not {m for m in imported if m.split(".")[0] == "targets"}, path.name  # targets only through the registry
