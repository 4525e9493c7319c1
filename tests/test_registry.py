"""The plugin registry finds plugins of separately installed distributions through entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from plugin_fixtures import install_distribution

import compress
from compress import registry
from compress.errors import CompressError, UnknownPluginError
from compress.specs import parse_spec

TOY_MODULE = '''
import torch

class ToyTeacher:
    """A toy text-only teacher from a third-party distribution."""

    name = "toy"
    embed_dim = 4
    languages = ("en",)
    has_image_tower = False
    has_text_tower = True

    def __init__(self, location=None, scale=1.0):
        self.location = location
        self.scale = scale
        self.fingerprint = f"toy:{location}:{scale}"

    def encode_images(self, images):
        raise RuntimeError("toy teacher has no image tower")

    def encode_texts(self, texts, lang):
        rows = torch.tensor([[len(t), 1.0, self.scale, 0.0] for t in texts])
        return rows / rows.norm(dim=1, keepdim=True)


def load_toy_teacher(location=None, **options):
    """Toy teacher shipped by compress-toy-plugin."""
    return ToyTeacher(location, **options)
'''


def install_toy_distribution(site: Path) -> None:
    install_distribution(
        site, "compress-toy-plugin", "compress_toy_plugin", TOY_MODULE, "compress.teachers", {"toy": "load_toy_teacher"}
    )


@pytest.fixture
def toy_site(tmp_path, monkeypatch):
    install_toy_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("compress_toy_plugin", None)


def test_first_party_plugins_are_registered_through_entry_points():
    assert "demo" in registry.names("teachers")
    assert "bilingual" in registry.names("students")
    assert {"mse", "smooth_l1", "cosine", "infonce", "affinity"} <= set(registry.names("losses"))
    assert {"executorch", "coreml"} <= set(registry.names("targets"))
    assert {"manifest", "shards", "demo"} <= set(registry.names("data"))


def test_third_party_teacher_is_found_and_used(toy_site):
    assert "toy" in registry.names("teachers")
    teacher = compress.load_teacher("toy:/somewhere")
    assert teacher.location == "/somewhere"
    emb = teacher.encode_texts(["ab", "abcd"], "en")
    assert emb.shape == (2, 4)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    teacher = compress.load_teacher({"name": "toy", "scale": 3.0})
    assert teacher.scale == 3.0
    rows = {name: (dist, summary) for name, dist, summary in registry.describe("teachers")}
    assert rows["toy"] == ("compress-toy-plugin", "Toy teacher shipped by compress-toy-plugin.")


def test_third_party_plugin_is_listed_by_the_cli(tmp_path):
    install_toy_distribution(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), COLUMNS="200")
    out = subprocess.run(
        [sys.executable, "-m", "compress", "plugins", "--kind", "teachers"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "toy" in out and "compress-toy-plugin" in out and "Toy teacher shipped" in out
    assert "demo" in out


def test_unknown_name_lists_available_names():
    with pytest.raises(UnknownPluginError) as err:
        compress.load_teacher("no-such-teacher")
    message = str(err.value)
    assert "no-such-teacher" in message and "demo" in message and "altclip" in message
    assert isinstance(err.value, CompressError)
    with pytest.raises(UnknownPluginError, match="available: .*smooth_l1"):
        registry.get("losses", "huber-ish")
    with pytest.raises(UnknownPluginError, match="unknown data source plugin 'parquet'; available: .*manifest"):
        registry.get("data", "parquet")


def test_parse_spec_forms():
    assert parse_spec("demo") == ("demo", {})
    assert parse_spec("altclip:/local/folder") == ("altclip", {"location": "/local/folder"})
    assert parse_spec({"name": "open-clip", "location": "ViT-B-16"}) == ("open-clip", {"location": "ViT-B-16"})
    for bad in ("", {"location": "x"}, 3):
        with pytest.raises(CompressError):
            parse_spec(bad)


def test_unknown_plugin_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="kinds: teachers"):
        registry.names("widgets")


def test_plugins_command_describes_every_kind():
    out = subprocess.run(
        [sys.executable, "-m", "compress", "plugins"],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
        check=True,
    ).stdout
    for name in (
        "demo",
        "bilingual",
        "smooth_l1",
        "altclip",
        "mclip",
        "open-clip",
        "chinese-clip",
        "executorch",
        "coreml",
        "manifest",
        "shards",
    ):
        assert name in out
    assert "failed to load" not in out
