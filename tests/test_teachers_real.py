"""The real teacher plugins (open_clip, Chinese-CLIP, AltCLIP, M-CLIP) on tiny random-weight checkpoints.

Every checkpoint is built with the real classes, saved the way its library saves it, and loaded
through `compress.load_teacher("<plugin>:<folder>")`, the path a downloaded checkpoint takes.
"""

from __future__ import annotations

import copy
import json
import shutil

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import (
    TINY_EMBED_DIM,
    install_in_hub_cache,
    save_tiny_altclip,
    save_tiny_chinese_clip,
    save_tiny_mclip,
    save_tiny_mclip_original,
    save_tiny_open_clip,
)

import compress
from compress import registry
from compress.errors import CompressError
from compress.protocols import Teacher

SAVERS = {
    "open-clip": save_tiny_open_clip,
    "chinese-clip": save_tiny_chinese_clip,
    "altclip": save_tiny_altclip,
    "mclip": save_tiny_mclip,
}
PLUGINS = list(SAVERS)
TOWERS = {"open-clip": (True, True), "chinese-clip": (True, True), "altclip": (True, True), "mclip": (False, True)}
DEFAULT_IDS = {
    "open-clip": "ViT-B-16@openai",
    "chinese-clip": "OFA-Sys/chinese-clip-vit-base-patch16",
    "altclip": "BAAI/AltCLIP",
    "mclip": "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus",
}
CAPTIONS = {
    "en": ["a photo of a cat", "a red car under a blue sky on a long road", "dog", "two apples and a banana"],
    "zh": ["一只猫的照片", "蓝天下的红色汽车", "狗", "草地上的一只狗和两个苹果"],
}


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    sizes = [(32, 32), (48, 40), (20, 36), (64, 64), (33, 47)]
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    images.append(Image.new("L", (40, 40), 128))  # greyscale input is converted by the teacher's preprocessing
    return images


IMAGES = _images()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One tiny checkpoint per plugin, plus a second open_clip one with other weights under the same name."""
    root = tmp_path_factory.mktemp("tiny-teachers")
    made = {plugin: save(root / plugin) for plugin, save in SAVERS.items()}
    made["open-clip-reseeded"] = save_tiny_open_clip(root / "reseeded" / "open-clip", seed=1)
    made["mclip-original"] = save_tiny_mclip_original(root / "mclip-original")
    return made


@pytest.fixture(scope="module")
def teachers(folders):
    return {plugin: compress.load_teacher(f"{plugin}:{folders[plugin]}") for plugin in PLUGINS}


def _texts_lang(teacher):
    lang = teacher.languages[0]
    return CAPTIONS[lang], lang


def test_entry_points_name_the_factories():
    from teachers.hf_clip import load_altclip_teacher, load_chinese_clip_teacher
    from teachers.mclip import load_mclip_teacher
    from teachers.openclip import load_open_clip_teacher

    assert registry.get("teachers", "open-clip") is load_open_clip_teacher
    assert registry.get("teachers", "chinese-clip") is load_chinese_clip_teacher
    assert registry.get("teachers", "altclip") is load_altclip_teacher
    assert registry.get("teachers", "mclip") is load_mclip_teacher


@pytest.mark.parametrize("plugin", PLUGINS)
def test_embeddings_are_unit_float32_rows(teachers, plugin):
    teacher = teachers[plugin]
    assert isinstance(teacher, Teacher)
    assert teacher.name == plugin
    assert teacher.embed_dim == TINY_EMBED_DIM
    assert (teacher.has_image_tower, teacher.has_text_tower) == TOWERS[plugin]
    texts, lang = _texts_lang(teacher)
    outputs = [(teacher.encode_texts(texts, lang), len(texts))]
    if teacher.has_image_tower:
        outputs.append((teacher.encode_images(IMAGES), len(IMAGES)))
    for output, count in outputs:
        assert output.shape == (count, TINY_EMBED_DIM)
        assert output.dtype == torch.float32
        assert not output.requires_grad
        torch.testing.assert_close(output.norm(dim=-1), torch.ones(count), atol=1e-5, rtol=0)
        assert torch.isfinite(output).all()
    # distinct inputs give distinct embeddings (the model is really run, not a constant)
    text_embeddings = outputs[0][0]
    assert (text_embeddings[0] - text_embeddings[1]).abs().max() > 1e-4


@pytest.mark.parametrize("plugin", PLUGINS)
def test_teacher_is_frozen(teachers, plugin):
    model = teachers[plugin].model
    assert not model.training
    params = list(model.parameters())
    assert params and not any(p.requires_grad for p in params)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_batch_size_does_not_change_embeddings(teachers, folders, plugin):
    single = compress.load_teacher({"name": plugin, "location": str(folders[plugin]), "batch_size": 1})
    eight = copy.copy(teachers[plugin])  # the same loaded model, embedding 8 inputs at a time
    eight.batch_size = 8
    assert single.batch_size == 1
    texts, lang = _texts_lang(single)
    texts = texts * 3  # 12 captions of mixed lengths: padding differs between the batchings
    torch.testing.assert_close(single.encode_texts(texts, lang), eight.encode_texts(texts, lang), atol=1e-5, rtol=0)
    if single.has_image_tower:
        images = IMAGES * 2
        torch.testing.assert_close(single.encode_images(images), eight.encode_images(images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_repeated_calls_and_reloads_agree_and_keep_the_fingerprint(teachers, folders, plugin):
    teacher = teachers[plugin]
    again = compress.load_teacher(f"{plugin}:{folders[plugin]}")
    texts, lang = _texts_lang(teacher)
    first = teacher.encode_texts(texts, lang)
    assert torch.equal(first, teacher.encode_texts(texts, lang))
    torch.testing.assert_close(first, again.encode_texts(texts, lang), atol=1e-6, rtol=0)
    assert again.fingerprint == teacher.fingerprint
    assert teacher.fingerprint.startswith(f"{plugin}|{plugin}|weights=sha256:")


def test_fingerprint_follows_weights_and_preprocessing(teachers, folders):
    original = teachers["open-clip"]
    reseeded = compress.load_teacher(f"open-clip:{folders['open-clip-reseeded']}")
    assert reseeded.model_id == original.model_id  # same folder name, other weights
    assert reseeded.weights_digest != original.weights_digest
    assert reseeded.fingerprint != original.fingerprint
    shorter = compress.load_teacher({"name": "altclip", "location": str(folders["altclip"]), "max_length": 8})
    assert shorter.weights_digest == teachers["altclip"].weights_digest
    assert shorter.fingerprint != teachers["altclip"].fingerprint


def test_languages_are_enforced(teachers, folders):
    with pytest.raises(CompressError, match="serves en, not 'zh'"):
        teachers["open-clip"].encode_texts(CAPTIONS["zh"], "zh")
    with pytest.raises(CompressError, match="serves zh, not 'en'"):
        teachers["chinese-clip"].encode_texts(CAPTIONS["en"], "en")
    assert teachers["altclip"].languages == ("zh", "en")
    assert teachers["altclip"].encode_texts(CAPTIONS["en"], "en").shape[0] == len(CAPTIONS["en"])
    assert teachers["mclip"].encode_texts(CAPTIONS["zh"], "zh").shape[0] == len(CAPTIONS["zh"])
    with pytest.raises(CompressError, match="not 'fr'"):
        teachers["altclip"].encode_texts(["une photo"], "fr")
    bilingual = compress.load_teacher({"name": "chinese-clip", "location": str(folders["chinese-clip"]), "languages": "zh,en"})
    assert bilingual.languages == ("zh", "en")
    assert bilingual.encode_texts(CAPTIONS["en"], "en").shape == (len(CAPTIONS["en"]), TINY_EMBED_DIM)


def test_bad_inputs_get_clear_errors(teachers):
    with pytest.raises(CompressError, match="mclip teacher 'mclip' has no image tower"):
        teachers["mclip"].encode_images(IMAGES)
    with pytest.raises(CompressError, match="image 1 is a str, not a PIL image"):
        teachers["altclip"].encode_images([IMAGES[0], "cat.jpg"])
    with pytest.raises(CompressError, match="text 0 is a bytes"):
        teachers["altclip"].encode_texts([b"cat"], "en")
    assert teachers["open-clip"].encode_images([]).shape == (0, TINY_EMBED_DIM)


def test_both_mclip_layouts_load_the_same_encoder(teachers, folders):
    original = compress.load_teacher(f"mclip:{folders['mclip-original']}")
    plain = teachers["mclip"]
    assert original.weights_digest == plain.weights_digest
    for lang in ("en", "zh"):
        torch.testing.assert_close(
            original.encode_texts(CAPTIONS[lang], lang), plain.encode_texts(CAPTIONS[lang], lang), atol=1e-6, rtol=0
        )


def test_open_clip_location_forms(folders, tmp_path):
    folder = folders["open-clip"]
    assert (
        compress.load_teacher(f"open-clip:local-dir:{folder}").fingerprint.split("|")[2]
        == (compress.load_teacher(f"open-clip:{folder}").fingerprint.split("|")[2])
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompressError, match="has no open_clip_config.json"):
        compress.load_teacher(f"open-clip:{tmp_path / 'empty'}")
    with pytest.raises(CompressError, match="'NoSuchNet' is not an open_clip architecture"):
        compress.load_teacher("open-clip:NoSuchNet")
    with pytest.raises(CompressError, match="'ViT-B-16' has no pretrained tag 'nonsense'"):
        compress.load_teacher("open-clip:ViT-B-16@nonsense")


@pytest.mark.parametrize("plugin", PLUGINS)
def test_missing_folder_is_named(plugin, tmp_path):
    missing = tmp_path / "not-downloaded"
    with pytest.raises(CompressError, match=f"{plugin} teacher: no such folder {missing}"):
        compress.load_teacher(f"{plugin}:{missing}")


@pytest.mark.parametrize("plugin", PLUGINS)
def test_hub_id_without_network_fails_fast_with_one_clear_line(plugin, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path))
    with pytest.raises(CompressError) as caught:
        compress.load_teacher(plugin)
    message = str(caught.value)
    assert "\n" not in message
    assert f"could not load {plugin} teacher '{DEFAULT_IDS[plugin]}'" in message
    assert f"--teacher {plugin}:/path/to/folder" in message


@pytest.mark.parametrize("plugin", PLUGINS)
def test_hub_id_already_in_the_compress_cache_loads_offline(plugin, teachers, folders, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path))
    install_in_hub_cache(folders[plugin], tmp_path / "hub", "acme/tiny")
    location = "hf-hub:acme/tiny" if plugin == "open-clip" else "acme/tiny"
    cached = compress.load_teacher(f"{plugin}:{location}")
    assert cached.model_id == location
    assert cached.weights_digest == teachers[plugin].weights_digest
    texts, lang = _texts_lang(cached)
    torch.testing.assert_close(cached.encode_texts(texts, lang), teachers[plugin].encode_texts(texts, lang), atol=1e-6, rtol=0)


def test_folder_without_weights_is_refused(folders, tmp_path):
    broken = tmp_path / "chinese-clip"
    shutil.copytree(folders["chinese-clip"], broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(CompressError, match=f"could not load chinese-clip teacher from folder {broken}"):
        compress.load_teacher(f"chinese-clip:{broken}")


def test_weights_that_do_not_cover_the_architecture_are_refused(folders, tmp_path):
    bigger = tmp_path / "altclip"
    shutil.copytree(folders["altclip"], bigger)
    config = json.loads((bigger / "config.json").read_text())
    config["vision_config"]["num_hidden_layers"] = 3  # a layer the weights do not have
    (bigger / "config.json").write_text(json.dumps(config))
    with pytest.raises(CompressError, match="weights do not match the AltCLIPModel config"):
        compress.load_teacher(f"altclip:{bigger}")


def test_remote_code_is_not_run_unless_asked(folders, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(folders["mclip"], folder)
    marker = tmp_path / "remote-code-ran"
    (folder / "modeling_remote.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="remote-encoder", auto_map={"AutoModel": "modeling_remote.RemoteModel"})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CompressError, match="could not load mclip teacher from folder"):
        compress.load_teacher(f"mclip:{folder}")
    assert not marker.exists()


def test_half_precision_weights_give_close_embeddings_and_their_own_fingerprint(teachers, folders):
    full = teachers["altclip"]
    half = compress.load_teacher({"name": "altclip", "location": str(folders["altclip"]), "dtype": "bfloat16"})
    assert next(half.model.parameters()).dtype == torch.bfloat16
    texts, lang = _texts_lang(full)
    for a, b in [
        (full.encode_texts(texts, lang), half.encode_texts(texts, lang)),
        (full.encode_images(IMAGES), half.encode_images(IMAGES)),
    ]:
        assert b.dtype == torch.float32
        assert (a * b).sum(dim=-1).min() > 0.98
    assert half.fingerprint != full.fingerprint
    with pytest.raises(CompressError, match="unsupported teacher dtype 'int8'"):
        compress.load_teacher({"name": "altclip", "location": str(folders["altclip"]), "dtype": "int8"})


def test_cuda_device(teachers, folders):
    spec = {"name": "open-clip", "location": str(folders["open-clip"]), "device": "cuda"}
    if not torch.cuda.is_available():
        with pytest.raises(CompressError, match="torch sees no CUDA GPU"):
            compress.load_teacher(spec)
        return
    gpu = compress.load_teacher(spec)
    cpu = teachers["open-clip"]
    assert gpu.encode_images(IMAGES).device.type == "cuda"
    torch.testing.assert_close(gpu.encode_images(IMAGES).cpu(), cpu.encode_images(IMAGES), atol=1e-3, rtol=0)
    torch.testing.assert_close(
        gpu.encode_texts(CAPTIONS["en"], "en").cpu(), cpu.encode_texts(CAPTIONS["en"], "en"), atol=1e-3, rtol=0
    )
    assert gpu.fingerprint == cpu.fingerprint


def test_altclip_and_chinese_clip_are_rows_of_one_table_driven_loader():
    from compress.registry import describe
    from teachers.hf_clip import FAMILIES, load_altclip_teacher, load_chinese_clip_teacher

    assert set(FAMILIES) == {"altclip", "chinese-clip"}
    assert load_altclip_teacher.__module__ == load_chinese_clip_teacher.__module__ == "teachers.hf_clip"
    summaries = {name: summary for name, _, summary in describe("teachers")}
    for name, family in FAMILIES.items():
        assert summaries[name] == family.summary  # `compress plugins` shows each row's own line
