"""Data sources are plugins: one from a separate distribution is opened, evaluated on and used for label sets by name."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from plugin_fixtures import install_distribution

import compress
from compress import registry
from compress.cli import main
from compress.data import get_source, open_dataset, source_names
from compress.data.sources import sources_with_tasks, zero_shot_task
from compress.errors import CompressError

SOURCE_MODULE = '''
from collections import Counter
import hashlib

from PIL import Image

from compress.data.sample import Sample

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
NAMES = {"en": ["red", "blue"], "zh": ["红色", "蓝色"]}


class Swatches:
    """Plain colour swatches, a toy data source from compress-swatches."""

    def __init__(self, count, lang):
        self.count, self.lang = count, lang
        self.skipped, self.skip_log = Counter(), []

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        colour = list(COLOURS)[index % 2]
        caption = f"a {colour} square" if self.lang == "en" else f"一个{NAMES['zh'][index % 2]}方块"
        return Sample(image=Image.new("RGB", (16, 16), COLOURS[colour]), caption=caption, lang=self.lang, key=f"sw/{index}")

    def captions(self):
        return [(self[i].caption, self.lang) for i in range(self.count)]

    def digest(self):
        return hashlib.sha256(f"swatches:{self.count}:{self.lang}".encode()).hexdigest()


class ColourTask:
    name = "colour"
    classnames = NAMES
    templates = {"en": ["a {} square."], "zh": ["一个{}方块。"]}

    def test_samples(self, count, split="test"):
        labels = [i % 2 for i in range(count)]
        return [Image.new("RGB", (16, 16), list(COLOURS.values())[label]) for label in labels], labels


class SwatchSource:
    """Colour swatches with a zero-shot colour task (compress-swatches)."""

    title = "swatches"

    def open(self, location=None, *, on_bad="skip", lang="en"):
        return Swatches(int(location or 4), lang)

    def zero_shot_tasks(self):
        return [ColourTask()]

    def retrieval_pairs(self, count, lang, split="test"):
        data = Swatches(count, lang)
        return [data[i].image for i in range(count)], [data[i].caption for i in range(count)]
'''


class ColourEncoder:
    """Embeds a swatch by its colour and a caption by the colour word it names."""

    name = "colour-encoder"
    fingerprint = "colour-encoder"
    embed_dim = 2
    languages = ("en", "zh")
    has_image_tower = has_text_tower = True

    def encode_images(self, images):
        rows = torch.tensor([[float(im.getpixel((0, 0))[0]), float(im.getpixel((0, 0))[2])] for im in images])
        return torch.nn.functional.normalize(rows, dim=-1)

    def encode_texts(self, texts, lang):
        rows = torch.tensor([[1.0, 0.0] if ("red" in t or "红" in t) else [0.0, 1.0] for t in texts])
        return torch.nn.functional.normalize(rows, dim=-1)


@pytest.fixture
def swatches(tmp_path, monkeypatch):
    site = install_distribution(
        tmp_path / "site", "compress-swatches", "compress_swatches", SOURCE_MODULE, "compress.data", {"swatches": "SwatchSource"}
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("compress_swatches", None)


def test_first_party_sources_are_registered():
    assert {"manifest", "shards", "demo"} <= set(registry.names("data"))
    assert "demo" in sources_with_tasks() and "manifest" not in sources_with_tasks()
    assert [task.name for task in get_source("demo").zero_shot_tasks()] == ["shape", "color", "color_shape"]


def test_a_third_party_source_opens_by_name_with_its_options(swatches):
    assert "swatches" in source_names()
    data = open_dataset("swatches:6", lang="zh")
    assert len(data) == 6 and data[1].caption == "一个蓝色方块" and data[1].lang == "zh"
    assert len(compress.open_data({"name": "swatches", "location": 2})) == 2
    assert len(open_dataset("swatches")) == 4  # a bare name opens a source that needs no location
    with pytest.raises(CompressError, match="unknown option.*for swatches data: size; accepted: lang, on_bad"):
        open_dataset("swatches", size=3)


def test_a_third_party_sources_task_is_evaluated_and_becomes_a_label_set(swatches, tmp_path, monkeypatch):
    import compress.api
    from compress.bundle.labels import available_label_sets, resolve_label_set
    from compress.eval.datasets import task_set

    dataset = task_set("swatches", "colour", count=6)
    assert dataset.name == "swatches-colour" and dataset.source == "swatches test split" and len(dataset) == 6

    monkeypatch.setattr(compress.api, "load_model", lambda spec: ColourEncoder())
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                "colours",
                "--dataset",
                "swatches:colour",
                "--retrieval",
                "swatches",
                "--limit",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "eval.json").read_text(encoding="utf-8"))["results"]["colours"]
    assert results["swatches-colour"]["en"]["top1"] == results["swatches-colour"]["zh"]["top1"] == pytest.approx(1.0)
    assert set(results["swatches-retrieval"]) == {"en", "zh"}

    assert "swatches-colour" in available_label_sets() and "demo-shape" in available_label_sets()
    label_set = resolve_label_set("swatches-colour")
    assert label_set.classnames["zh"] == ["红色", "蓝色"] and label_set.source == "swatches"
    images, labels = label_set.test_samples(3)
    assert labels == [0, 1, 0] and len(images) == 3
    with pytest.raises(CompressError, match="unknown swatches task 'shape'; tasks: colour"):
        zero_shot_task("swatches", "shape")


def test_demo_label_sets_come_from_the_registered_demo_source():
    from compress.bundle.labels import resolve_label_set
    from compress.demo_world import get_task

    shape = resolve_label_set("demo-shape")
    assert shape.source == "demo world" and shape.classnames == get_task("shape").classnames
    images, labels = shape.test_samples(4)
    assert (images[0].size, labels) == ((64, 64), list(get_task("shape").test_samples(4)[1]))
