"""The demo teacher: trained on first use into the cache, then loaded frozen from it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import compress
from compress.demo_world import DemoWorld, alphabet, evaluate_demo_tasks
from compress.errors import CompressError
from compress.protocols import Teacher
from teachers.demo import CONFIG_FILE, WEIGHTS_FILE, DemoTeacher, config_hash, demo_config, load_demo_teacher
from teachers.demo_model import UNK_ID, CharTokenizer, normalise_text
from teachers.demo_train import shape_twin, symmetric_info_nce, training_batch

TINY = dict(steps=3, batch_size=8, width=4, text_width=16, text_heads=2, text_layers=1, embed_dim=16)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def teacher(cache) -> DemoTeacher:
    return load_demo_teacher(progress=False, **TINY)


def demo_images(count: int = 3):
    world = DemoWorld(image_size=48)  # not the teacher's own size: it resizes
    return [world.render(world.scene(i, "val")) for i in range(count)]


def test_first_load_trains_into_the_cache_and_the_second_reads_it(cache, teacher):
    folder = cache / "teachers" / f"demo-{config_hash(demo_config(**TINY))}"
    assert teacher.trained_now and teacher.folder == folder
    weights = folder / WEIGHTS_FILE
    record = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    assert record["config"] == demo_config(**TINY) and record["alphabet"] == alphabet()
    assert record["training"]["steps"] == 3 and record["training"]["steps_per_second"] > 0
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temporary files left behind"
    stamp = weights.stat().st_mtime_ns

    again = load_demo_teacher(progress=False, **TINY)
    assert not again.trained_now
    assert weights.stat().st_mtime_ns == stamp
    assert again.fingerprint == teacher.fingerprint
    images = demo_images()
    assert torch.equal(again.encode_images(images), teacher.encode_images(images))


def test_the_teacher_is_frozen(teacher):
    assert all(not p.requires_grad for p in teacher.model.parameters())
    assert not any(m.training for m in teacher.model.modules())
    assert teacher.has_image_tower and teacher.has_text_tower and teacher.languages == ("en", "zh")
    assert isinstance(teacher, Teacher)


def test_outputs_are_normalised_float32(teacher):
    images = teacher.encode_images(demo_images(5))
    english = teacher.encode_texts(["a photo of a red circle.", "A small BLUE star at the top."], "en")
    chinese = teacher.encode_texts(["一个红色的圆形。", "上面有一个蓝色的小星形。", "完全陌生的字"], "zh")
    for embedding, rows in [(images, 5), (english, 2), (chinese, 3)]:
        assert embedding.shape == (rows, teacher.embed_dim) and embedding.dtype == torch.float32
        assert torch.allclose(embedding.norm(dim=-1), torch.ones(rows), atol=1e-5)
    assert teacher.encode_texts([], "en").shape == (0, teacher.embed_dim)


def test_bad_inputs_are_refused(teacher):
    with pytest.raises(CompressError, match="fr"):
        teacher.encode_texts(["bonjour"], "fr")
    with pytest.raises(CompressError, match="not a PIL image"):
        teacher.encode_images([torch.zeros(3, 8, 8)])
    with pytest.raises(CompressError, match="unknown demo teacher option"):
        load_demo_teacher(progress=False, depth=3)
    with pytest.raises(CompressError, match="must be positive"):
        load_demo_teacher(progress=False, steps=0)


def test_fingerprint_follows_the_config(cache, teacher):
    other = load_demo_teacher(progress=False, **{**TINY, "steps": 4})
    assert other.trained_now and other.folder != teacher.folder
    assert other.fingerprint != teacher.fingerprint
    assert teacher.fingerprint.startswith(f"demo|demo-{config_hash(teacher.config)}|weights=sha256:")
    assert "|preprocess=v" in teacher.fingerprint


def test_training_is_deterministic(tmp_path, monkeypatch, teacher):
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "elsewhere"))
    again = load_demo_teacher(progress=False, **TINY)
    assert again.trained_now and again.folder != teacher.folder
    assert again.fingerprint == teacher.fingerprint


def test_location_folder_saves_loads_and_refuses_a_conflicting_config(tmp_path, cache):
    folder = tmp_path / "my-demo-teacher"
    saved = load_demo_teacher(folder, progress=False, **TINY)
    assert saved.trained_now and (folder / WEIGHTS_FILE).is_file()
    loaded = load_demo_teacher(str(folder), progress=False)
    assert not loaded.trained_now and loaded.fingerprint == saved.fingerprint and loaded.config == saved.config
    with pytest.raises(CompressError, match="steps=3"):
        load_demo_teacher(folder, progress=False, **{**TINY, "steps": 5})
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(CompressError, match="is a file"):
        load_demo_teacher(tmp_path / "a-file", progress=False)


def test_damaged_weights_are_refused_with_the_file_named(tmp_path, cache):
    folder = tmp_path / "teacher"
    load_demo_teacher(folder, progress=False, **TINY)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-7] + b"garbage")
    with pytest.raises(CompressError, match=str(weights.name)):
        load_demo_teacher(folder, progress=False)
    (folder / CONFIG_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(CompressError, match=CONFIG_FILE):
        load_demo_teacher(folder, progress=False)


def test_loads_through_the_plugin_registry(cache, teacher):
    through_registry = compress.load_teacher({"name": "demo", "progress": False, **TINY})
    assert isinstance(through_registry, DemoTeacher) and through_registry.fingerprint == teacher.fingerprint
    assert not through_registry.trained_now


def test_training_lowers_the_loss(cache):
    learner = load_demo_teacher(progress=False, **{**TINY, "steps": 30, "batch_size": 16, "width": 8, "lr": 3e-3})
    summary = learner.training_summary
    assert summary["final_loss"] < summary["first_loss"] - 0.3


def test_evaluate_demo_tasks_reports_every_task_and_language(teacher):
    results = evaluate_demo_tasks(teacher, count=16)
    assert set(results) == {(t, lang) for t in ("shape", "color", "color_shape") for lang in ("en", "zh")}
    assert all(0.0 <= v <= 1.0 for v in results.values())


def test_character_tokenizer():
    tokenizer = CharTokenizer(alphabet(), context_length=12)
    ids = tokenizer(["A red circle", "一个红色的圆形", "x☃"])
    assert ids.dtype == torch.int64 and ids.shape == (3, 12)
    assert torch.equal(ids, CharTokenizer(alphabet(), context_length=12)(["A red circle", "一个红色的圆形", "x☃"]))
    assert tokenizer.encode("A") == tokenizer.encode("a")  # lower-cased
    assert tokenizer.encode("，") == tokenizer.encode(",")  # full-width folded
    assert UNK_ID not in tokenizer.encode("a red circle") + tokenizer.encode("一个红色的圆形")
    assert tokenizer.encode("x☃")[-1] == UNK_ID
    assert len(tokenizer.encode("a" * 40)) == 12
    assert tokenizer.vocab_size == len(alphabet()) + 2 and normalise_text(alphabet()) == alphabet()


def test_training_batches_pair_every_scene_with_its_shape_twin():
    config = demo_config(**{**TINY, "batch_size": 10})
    batch = training_batch(DemoWorld(image_size=32), 2, config)
    again = training_batch(DemoWorld(image_size=32), 2, config)
    assert batch.captions == again.captions and len(batch.images) == 10
    world = DemoWorld()
    for offset in range(5):
        scene = world.scene(2 * 5 + offset, "train")
        twin = shape_twin(scene, np.random.default_rng(offset))
        changed = [(a, b) for a, b in zip(scene.objects, twin.objects) if a != b]
        assert len(changed) == 1 and changed[0][0].shape != changed[0][1].shape
        assert replace(changed[0][1], shape=changed[0][0].shape) == changed[0][0]
    for lang in ("en", "zh"):
        matches = batch.matches[lang]
        assert matches.shape == (10, 10) and matches.diagonal().all()


def test_multi_positive_loss_reduces_to_clip_loss_and_rewards_true_pairs():
    torch.manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    scale = torch.tensor(2.0)
    logits = scale.exp() * text @ image.T
    clip = (
        torch.nn.functional.cross_entropy(logits, torch.arange(6)) + torch.nn.functional.cross_entropy(logits.T, torch.arange(6))
    ) / 2
    assert torch.allclose(symmetric_info_nce(image, text, scale, torch.eye(6, dtype=torch.bool)), clip)
    # caption 0 is also true of picture 1: a text equal to picture 1 then costs less than under plain CLIP
    text = image.clone()
    text[0] = image[1]
    matches = torch.eye(6, dtype=torch.bool)
    matches[0, 1] = True
    assert symmetric_info_nce(image, text, scale, matches) < symmetric_info_nce(
        image, text, scale, torch.eye(6, dtype=torch.bool)
    )
