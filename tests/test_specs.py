"""One spec grammar: the same text means the same teacher, student, data or model in every command and API entry."""

from __future__ import annotations

import json
import sys

import pytest
from plugin_fixtures import install_distribution

import compress
from compress import specs
from compress.cli import main
from compress.compose import EnsembleTeacher, ImageTextTeacher
from compress.errors import CompressError, UnknownPluginError
from compress.specs import data_spec, local_dir, parse_spec, parse_text, teacher_spec, with_options

PARTS_MODULE = '''
import torch
import torch.nn.functional as F


class _Part:
    embed_dim = 4
    languages = ("en", "zh")

    def __init__(self, location=None, device="cpu", scale=1.0):
        self.location, self.device, self.scale = location, device, float(scale)
        self.fingerprint = f"{self.name}:{location}:{scale}"
        self.model_id = self.name


class ImagePart(_Part):
    """Image-only toy teacher: the mean colour of a picture."""

    name = "toy-image"
    has_image_tower, has_text_tower = True, False

    def encode_images(self, images):
        rows = [[*(c / 255 for c in im.convert("RGB").resize((1, 1)).getpixel((0, 0))), self.scale] for im in images]
        return F.normalize(torch.tensor(rows), dim=-1)

    def encode_texts(self, texts, lang):
        raise RuntimeError("no text tower")


class TextPart(_Part):
    """Text-only toy teacher: character statistics of a caption."""

    name = "toy-text"
    has_image_tower, has_text_tower = False, True

    def encode_images(self, images):
        raise RuntimeError("no image tower")

    def encode_texts(self, texts, lang):
        rows = [[len(t), sum(map(ord, t)) % 7 + 1.0, 1.0, self.scale] for t in texts]
        return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)
'''

COMPOSED = "{image: toy-image, text: 'toy-text:/models/text'}"


@pytest.fixture
def toy_parts(tmp_path, monkeypatch):
    """An image-only and a text-only teacher from one separately installed distribution."""
    site = install_distribution(
        tmp_path / "site",
        "compress-toy-parts",
        "compress_toy_parts",
        PARTS_MODULE,
        "compress.teachers",
        {"toy-image": "ImagePart", "toy-text": "TextPart"},
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("compress_toy_parts", None)


# --- the grammar ------------------------------------------------------------------------------


def test_command_line_text_is_inline_yaml_or_json_or_a_plain_string():
    assert parse_text("{image: a, text: b}") == {"image": "a", "text": "b"}
    assert parse_text('{"image": "a", "text": "b"}') == {"image": "a", "text": "b"}
    assert parse_text("[demo:train, {name: manifest, location: m.jsonl}]") == [
        "demo:train",
        {"name": "manifest", "location": "m.jsonl"},
    ]
    assert parse_text("  altclip:/models/x ") == "  altclip:/models/x "
    assert parse_text("shards/{000..009}.tar") == "shards/{000..009}.tar"  # only a leading brace opens a mapping
    with pytest.raises(CompressError, match=r"--teacher '\{image: a' is not a valid YAML or JSON"):
        parse_text("{image: a", "--teacher")


def test_teacher_specs_single_composed_and_ensemble():
    assert teacher_spec("altclip:/m").kind == specs.PLUGIN and parse_spec("altclip:/m") == ("altclip", {"location": "/m"})
    composed = teacher_spec({"image": "a", "text": None})
    assert composed.kind == specs.IMAGE_TEXT and composed.parts == {"image": "a", "text": None}
    ensemble = teacher_spec({"ensemble": ["a", "b"], "weights": [2, 1]})
    assert ensemble.kind == specs.ENSEMBLE and ensemble.members == ["a", "b"] and ensemble.weights == [2, 1]
    with pytest.raises(CompressError, match="unknown key.*colour"):
        teacher_spec({"image": "a", "colour": "red"})
    with pytest.raises(CompressError, match="'ensemble' is a list"):
        teacher_spec({"ensemble": "a"})
    assert with_options("altclip:/m", device="cuda:1") == {"name": "altclip", "location": "/m", "device": "cuda:1"}
    assert with_options({"image": "a", "text": {"name": "b", "x": 1}}, device="cpu") == {
        "image": {"name": "a", "device": "cpu"},
        "text": {"name": "b", "x": 1, "device": "cpu"},
    }
    assert with_options({"ensemble": ["a"], "weights": [1]}, device="cpu") == {
        "ensemble": [{"name": "a", "device": "cpu"}],
        "weights": [1],
    }


def test_data_specs_take_a_source_prefix_and_unambiguous_paths(tmp_path, monkeypatch):
    sources, bare = ["demo", "manifest", "shards"], ["demo"]
    assert data_spec("demo", sources, bare=bare) == specs.DataSpec("demo", None, {})
    assert data_spec("demo:val", sources, {"size": 3}, bare=bare) == specs.DataSpec("demo", "val", {"size": 3})
    assert data_spec("manifest:x.jsonl", sources, bare=bare).source == "manifest"
    assert data_spec("shards:s/*.tar", sources, bare=bare) == specs.DataSpec("shards", "s/*.tar", {})
    assert data_spec("s/{000..003}.tar", sources, bare=bare).source == "shards"
    (tmp_path / "m.jsonl").write_text("")
    (tmp_path / "shards").mkdir()
    monkeypatch.chdir(tmp_path)
    assert data_spec("m.jsonl", sources, bare=bare).source == "manifest"
    assert data_spec("shards", sources, bare=bare) == specs.DataSpec("shards", "shards", {})  # a folder, not the source
    with pytest.raises(UnknownPluginError, match="unknown data source plugin 'parquet'; available: demo, manifest, shards"):
        data_spec({"name": "parquet", "location": "x"}, sources, bare=bare)
    with pytest.raises(CompressError, match="no such file or folder"):
        data_spec("nowhere.jsonl", sources, bare=bare)


def test_local_dir_prefix_names_a_folder(tmp_path):
    assert local_dir(f"local-dir:{tmp_path}") == tmp_path
    assert local_dir(str(tmp_path)) == tmp_path and local_dir(tmp_path) == tmp_path
    assert local_dir("bilingual") is None and local_dir({"family": "bilingual"}) is None
    with pytest.raises(CompressError, match="no such folder"):
        local_dir(f"local-dir:{tmp_path / 'absent'}")


# --- the same composed teacher in every command -------------------------------------------------


def test_load_teacher_composes_from_the_parsed_text(toy_parts):
    teacher = compress.load_teacher(parse_text(COMPOSED))
    assert isinstance(teacher, ImageTextTeacher)
    assert teacher.image.name == "toy-image" and teacher.text.location == "/models/text"
    ensemble = compress.load_teacher(parse_text("{ensemble: [toy-text, {name: toy-text, scale: 2}], weights: [1, 3]}"))
    assert isinstance(ensemble, EnsembleTeacher) and ensemble.weights == [0.25, 0.75]


def test_recipe_cache_build_and_eval_accept_the_same_composed_teacher(toy_parts, tmp_path, monkeypatch, capsys):
    import compress.commands.recipe as recipe_command

    expected = compress.load_teacher(parse_text(COMPOSED)).fingerprint

    captured = {}
    monkeypatch.setattr(recipe_command, "run_recipe", lambda name, config, **options: captured.update(config))
    assert main(["recipe", "dc_clip", "--teacher", COMPOSED, "--data", "{name: demo, size: 8}"]) == 0
    assert captured["data"] == {"name": "demo", "size": 8}
    assert compress.load_teacher(captured["teacher"]).fingerprint == expected

    out = tmp_path / "cache"
    data = "{name: demo, location: train, size: 4, image_size: 16}"
    assert main(["cache", "build", "--teacher", COMPOSED, "--data", data, "--out", str(out), "--no-progress"]) == 0
    index = json.loads((out / "cache.json").read_text(encoding="utf-8"))
    assert index["teacher"]["fingerprint"] == expected and index["samples"] == 4

    device_out = tmp_path / "cache-cpu"
    assert (
        main(
            [
                "cache",
                "build",
                "--teacher",
                COMPOSED,
                "--data",
                data,
                "--out",
                str(device_out),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )  # --device reaches every part of a composed teacher

    report = tmp_path / "eval"
    assert main(["eval", "--model", COMPOSED, "--dataset", "demo:color", "--limit", "8", "--out", str(report)]) == 0
    results = json.loads((report / "eval.json").read_text(encoding="utf-8"))["results"]
    (label,) = results
    assert label == COMPOSED and set(results[label]["demo-color"]) == {"en", "zh"}
    capsys.readouterr()


def test_every_command_reads_its_specs_through_parse_text(toy_parts, tmp_path, monkeypatch):
    """recipe, cache build, eval and search hand each spec option to `compress.specs.parse_text`."""
    import compress.commands.recipe as recipe_command
    import compress.search

    seen = []
    real = specs.parse_text
    monkeypatch.setattr(specs, "parse_text", lambda text, what="spec": seen.append((what, text)) or real(text, what))

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(recipe_command, "run_recipe", lambda *args, **kwargs: None)
    main(["recipe", "dc_clip", "--teacher", COMPOSED, "--data", "demo:train"])
    assert ("--teacher", COMPOSED) in seen and ("--data", "demo:train") in seen

    seen.clear()
    import compress.cache.build

    monkeypatch.setattr(compress.cache.build, "build_cache", stop)
    with pytest.raises(Stop):
        main(["cache", "build", "--teacher", COMPOSED, "--data", "{name: demo, size: 2}", "--out", str(tmp_path / "c")])
    assert seen == [("--data", "{name: demo, size: 2}"), ("--teacher", COMPOSED)]

    seen.clear()
    import compress.eval.runner

    monkeypatch.setattr(compress.eval.runner, "evaluate_models", stop)
    with pytest.raises(Stop):
        main(["eval", "--model", COMPOSED, "--dataset", "demo:shape", "--limit", "2"])
    assert seen == [("--model", COMPOSED)]

    seen.clear()
    teachers = []
    monkeypatch.setattr(compress.search, "run_search", lambda budgets, image, text, teacher, *a, **k: teachers.append(teacher()))
    main(["search", "--teacher", COMPOSED, "--out", str(tmp_path / "s")])
    assert seen == [("--teacher", COMPOSED)] and isinstance(teachers[0], ImageTextTeacher)


def test_eval_models_are_folders_by_prefix_or_path_and_teachers_otherwise(toy_parts, tmp_path):
    from compress.api import load_model

    assert isinstance(load_model(parse_text(COMPOSED)), ImageTextTeacher)
    assert load_model("toy-text:/m").location == "/m"
    (tmp_path / "empty").mkdir()
    for spec in (f"local-dir:{tmp_path / 'empty'}", str(tmp_path / "empty")):
        with pytest.raises(CompressError, match="neither a bundle"):
            load_model(spec)
    with pytest.raises(CompressError, match="no such model folder"):
        load_model("./no/such/student")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CompressError, match="not a file"):
        load_model(str(tmp_path / "file.txt"))


def test_export_reads_its_data_specs_with_the_same_grammar():
    from compress.commands.export import spread_data

    samples = spread_data("{name: demo, location: val, size: 6, image_size: 16}", 3, "parity", "--parity-count")
    assert [sample.key for sample in samples] == ["demo/val/0", "demo/val/2", "demo/val/4"]
