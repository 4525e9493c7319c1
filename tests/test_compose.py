"""Composed teachers: an image tower from one checkpoint with a text tower from another, and ensembles.

The members are real tiny checkpoints (open_clip CLIP, M-CLIP-style XLM-R text encoder) loaded
through their plugins.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import TINY_EMBED_DIM, save_tiny_mclip, save_tiny_open_clip

import compress
from compress.compose import EnsembleTeacher, ImageTextTeacher
from compress.errors import CompressError
from compress.protocols import Teacher

CAPTIONS = {"en": ["a photo of a cat", "a red car under a blue sky"], "zh": ["一只猫的照片", "蓝天下的红色汽车"]}
IMAGES = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (36, 30, 3), dtype=np.uint8)) for i in range(3)]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    """Spec strings of tiny checkpoints: two open_clip CLIPs, an mclip into their space, one into another."""
    root = tmp_path_factory.mktemp("compose")
    return {
        "clip-a": f"open-clip:{save_tiny_open_clip(root / 'clip-a', seed=0)}",
        "clip-b": f"open-clip:{save_tiny_open_clip(root / 'clip-b', seed=1)}",
        "mclip": f"mclip:{save_tiny_mclip(root / 'mclip', seed=2)}",
        "mclip-24": f"mclip:{save_tiny_mclip(root / 'mclip-24', seed=3, embed_dim=24)}",
    }


@pytest.fixture(scope="module")
def loaded(specs):
    return {key: compress.load_teacher(spec) for key, spec in specs.items()}


def test_image_tower_of_one_teacher_with_text_tower_of_another(specs, loaded):
    paired = compress.load_teacher({"image": specs["clip-a"], "text": specs["mclip"]})
    assert isinstance(paired, ImageTextTeacher) and isinstance(paired, Teacher)
    assert paired.has_image_tower and paired.has_text_tower
    assert paired.embed_dim == TINY_EMBED_DIM
    assert paired.languages == loaded["mclip"].languages == ("en", "zh")
    torch.testing.assert_close(paired.encode_images(IMAGES), loaded["clip-a"].encode_images(IMAGES), atol=1e-6, rtol=0)
    for lang in ("en", "zh"):  # Chinese captions are served although the CLIP alone serves only English
        torch.testing.assert_close(
            paired.encode_texts(CAPTIONS[lang], lang),
            loaded["mclip"].encode_texts(CAPTIONS[lang], lang),
            atol=1e-6,
            rtol=0,
        )
    with pytest.raises(CompressError, match="serves en"):
        loaded["clip-a"].encode_texts(CAPTIONS["zh"], "zh")
    members = {loaded["clip-a"].fingerprint, loaded["mclip"].fingerprint}
    assert paired.fingerprint not in members
    assert all(fingerprint in paired.fingerprint for fingerprint in members)
    swapped = ImageTextTeacher(image=loaded["clip-b"], text=loaded["mclip"])
    assert swapped.fingerprint != paired.fingerprint


def test_one_sided_compositions(loaded):
    image_only = ImageTextTeacher(image=loaded["clip-a"])
    assert image_only.has_image_tower and not image_only.has_text_tower and image_only.languages == ()
    with pytest.raises(CompressError, match="no text tower"):
        image_only.encode_texts(CAPTIONS["en"], "en")
    text_only = ImageTextTeacher(text=loaded["mclip"])
    assert text_only.fingerprint != image_only.fingerprint
    with pytest.raises(CompressError, match="no image tower"):
        text_only.encode_images(IMAGES)


def test_embedding_dims_must_match(specs):
    with pytest.raises(CompressError, match=r"embeds images in 16 dims.*embeds texts in 24 dims"):
        compress.load_teacher({"image": specs["clip-a"], "text": specs["mclip-24"]})


def test_a_text_only_teacher_cannot_be_the_image_side(loaded):
    with pytest.raises(CompressError, match="mclip teacher 'mclip' has no image tower"):
        ImageTextTeacher(image=loaded["mclip"], text=loaded["clip-a"])


def test_ensemble_is_the_renormalised_weighted_mean(specs, loaded):
    ensemble = compress.load_teacher({"ensemble": [specs["clip-a"], specs["clip-b"]], "weights": [3, 1]})
    assert isinstance(ensemble, EnsembleTeacher) and isinstance(ensemble, Teacher)
    assert ensemble.weights == [0.75, 0.25]
    assert ensemble.has_image_tower and ensemble.has_text_tower and ensemble.languages == ("en",)
    a, b = loaded["clip-a"], loaded["clip-b"]
    expected = torch.nn.functional.normalize(0.75 * a.encode_images(IMAGES) + 0.25 * b.encode_images(IMAGES), dim=-1)
    got = ensemble.encode_images(IMAGES)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(len(IMAGES)), atol=1e-5, rtol=0)
    texts = ensemble.encode_texts(CAPTIONS["en"], "en")
    expected = torch.nn.functional.normalize(
        0.75 * a.encode_texts(CAPTIONS["en"], "en") + 0.25 * b.encode_texts(CAPTIONS["en"], "en"), dim=-1
    )
    torch.testing.assert_close(texts, expected, atol=1e-6, rtol=0)
    equal = EnsembleTeacher([a, b])
    assert equal.weights == [0.5, 0.5]
    assert len({ensemble.fingerprint, equal.fingerprint, a.fingerprint, b.fingerprint}) == 4


def test_ensemble_keeps_towers_and_languages_every_member_has(loaded):
    mixed = EnsembleTeacher([loaded["clip-a"], loaded["mclip"]])
    assert mixed.has_text_tower and not mixed.has_image_tower
    assert mixed.languages == ("en",)
    assert mixed.encode_texts(CAPTIONS["en"], "en").shape == (2, TINY_EMBED_DIM)
    with pytest.raises(CompressError, match="not every ensemble member has an image tower"):
        mixed.encode_images(IMAGES)
    with pytest.raises(CompressError, match="serves en, not 'zh'"):
        mixed.encode_texts(CAPTIONS["zh"], "zh")


def test_ensemble_rejects_bad_members_and_weights(loaded):
    a, b = loaded["clip-a"], loaded["clip-b"]
    with pytest.raises(CompressError, match=r"share one embedding dim .*16.*24"):
        EnsembleTeacher([a, loaded["mclip-24"]])
    with pytest.raises(CompressError, match="2 members but 3 weights"):
        EnsembleTeacher([a, b], weights=[1, 1, 1])
    with pytest.raises(CompressError, match="finite and positive"):
        EnsembleTeacher([a, b], weights=[1, -1])
    with pytest.raises(CompressError, match="at least one member"):
        EnsembleTeacher([])
    with pytest.raises(CompressError, match="needs an image teacher, a text teacher, or both"):
        ImageTextTeacher()
