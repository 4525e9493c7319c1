"""A student family from a separately installed distribution: built, saved and reloaded through its recorded family."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from plugin_fixtures import install_distribution

import compress
from compress import registry
from compress.api import load_model, saved_family
from compress.errors import CompressError, UnknownPluginError

FAMILY_MODULE = '''
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


class TinyStudent(torch.nn.Module):
    """A tiny two-tower student family shipped by compress-mine-students."""

    languages = ("en", "zh")
    has_image_tower = True
    has_text_tower = True

    def __init__(self, config):
        super().__init__()
        self.config = {"width": 4, **config}
        self.embed_dim = self.config["width"]
        self.image_tower = torch.nn.Linear(3, self.embed_dim)
        self.text_tower = torch.nn.Embedding(256, self.embed_dim)

    @classmethod
    def from_config(cls, config):
        return cls(config)

    @classmethod
    def from_pretrained(cls, folder):
        state = json.loads((Path(folder) / "student.json").read_text())
        student = cls(state["config"])
        student.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        return student

    def save_pretrained(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "student.json").write_text(json.dumps({"family": "mine", "config": self.config}))

    def preprocess_images(self, images):
        return torch.stack([torch.tensor(image.resize((1, 1)).getpixel((0, 0)), dtype=torch.float32) / 255 for image in images])

    def tokenize(self, texts):
        return torch.tensor([[min(ord(c), 255) for c in (t + " " * 8)[:8]] for t in texts])

    def encode_images(self, images):
        return F.normalize(self.image_tower(self.preprocess_images(images)), dim=-1)

    def encode_texts(self, texts, lang):
        return F.normalize(self.text_tower(self.tokenize(texts)).mean(dim=1), dim=-1)
'''


@pytest.fixture
def mine_site(tmp_path, monkeypatch):
    """The family installed as pip lays a distribution out: its module and a .dist-info with entry points."""
    site = install_distribution(
        tmp_path / "site",
        "compress-mine-students",
        "compress_mine_students",
        FAMILY_MODULE,
        "compress.students",
        {"mine": "TinyStudent"},
        version="0.1",
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("compress_mine_students", None)


def test_a_third_party_family_is_built_saved_and_reloaded_by_its_recorded_family(mine_site, tmp_path):
    from PIL import Image

    assert "mine" in registry.names("students")
    student = compress.build_student({"family": "mine", "width": 6})
    assert type(student).__name__ == "TinyStudent" and student.embed_dim == 6
    folder = tmp_path / "saved"
    student.save_pretrained(folder)
    assert saved_family(folder) == "mine"

    images = [Image.new("RGB", (8, 8), colour) for colour in ("red", "teal")]
    for spec in (folder, str(folder), f"local-dir:{folder}"):
        reloaded = compress.build_student(spec)
        assert type(reloaded).__name__ == "TinyStudent" and reloaded.config == student.config
        torch.testing.assert_close(reloaded.encode_images(images), student.encode_images(images))
        torch.testing.assert_close(reloaded.encode_texts(["猫", "a cat"], "zh"), student.encode_texts(["猫", "a cat"], "zh"))
    evaluated = load_model(str(folder))  # the evaluation path loads it the same way, in eval mode
    assert type(evaluated).__name__ == "TinyStudent" and not evaluated.training


def test_the_recorded_family_decides_and_its_absence_is_a_clear_error(mine_site, tmp_path):
    folder = tmp_path / "saved"
    compress.build_student({"family": "mine"}).save_pretrained(folder)
    state = json.loads((folder / "student.json").read_text())
    (folder / "student.json").write_text(json.dumps({**state, "family": "theirs"}))
    with pytest.raises(UnknownPluginError, match="unknown student plugin 'theirs'; available: .*mine"):
        compress.build_student(folder)
    (folder / "student.json").write_text(json.dumps({"config": state["config"]}))
    with pytest.raises(CompressError, match=r"student\.json: records no student 'family'"):
        compress.build_student(folder)
    (folder / "student.json").unlink()
    with pytest.raises(CompressError, match="not a saved student"):
        compress.build_student(folder)
    with pytest.raises(CompressError, match="no such folder"):
        compress.build_student(f"local-dir:{tmp_path / 'nowhere'}")


def test_a_factory_entry_point_builds_but_cannot_reload(tmp_path, monkeypatch):
    source = FAMILY_MODULE + "\n\ndef build(config):\n    return TinyStudent(config)\n"
    site = install_distribution(
        tmp_path / "site",
        "compress-factory-students",
        "compress_factory_students",
        source,
        "compress.students",
        {"mine": "build"},
        version="0.1",
    )
    monkeypatch.syspath_prepend(str(site))
    try:
        student = compress.build_student({"family": "mine", "width": 5})
        assert student.embed_dim == 5
        student.save_pretrained(tmp_path / "saved")
        with pytest.raises(CompressError, match="student family 'mine' cannot load a saved folder"):
            compress.build_student(tmp_path / "saved")
    finally:
        sys.modules.pop("compress_factory_students", None)


def test_the_first_party_family_is_registered_as_a_class_that_builds_and_loads():
    entry = registry.get("students", "bilingual")
    assert callable(entry.from_config) and callable(entry.from_pretrained)
