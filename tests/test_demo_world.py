"""The demo world: deterministic, disjoint splits, every shape and colour drawn, bilingual captions."""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import ImageFilter

from compress.data.sample import Sample
from compress.demo_world import (
    COLORS,
    DEFAULT_SIZES,
    DEMO_TASKS,
    POSITIONS,
    SHAPES,
    SIZES,
    SPLITS,
    DemoWorld,
    alphabet,
    evaluate_demo_tasks,
    open_demo,
    retrieval_pairs,
    scene_seed,
    split_seed_range,
    task_samples,
    zero_shot_tasks,
)
from compress.demo_world.captions import PAIR_TEMPLATES, SINGLE_CLAIMS, SINGLE_TEMPLATES, caption, caption_claims
from compress.demo_world.scene import Background, Scene, SceneObject
from compress.demo_world.truth import truth_matrix
from compress.errors import CompressError

CJK = re.compile(r"[\u4e00-\u9fff]")


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def plain_scene(**attributes) -> Scene:
    """One object in the centre of a flat grey background, without noise."""
    obj = SceneObject(
        shape=attributes.get("shape", "circle"),
        color=attributes.get("color", "red"),
        size=attributes.get("size", "large"),
        position=attributes.get("position", "center"),
        offset=(0.0, 0.0),
        scale=1.0,
        rotation=0.0,
        tint=(0, 0, 0),
    )
    background = Background(kind="flat", colors=((128, 128, 128), (128, 128, 128)), angle=0.0)
    return Scene(seed=1, split="test", index=0, objects=(obj,), background=background, noise_std=0.0, caption_choice=0)


def test_same_seed_gives_same_scene_pixels_and_captions():
    first, second = DemoWorld(image_size=48), DemoWorld(image_size=48)
    for split, index in [("train", 0), ("train", 17), ("val", 3), ("test", 250)]:
        a, b = first.scene(index, split), second.scene(index, split)
        assert a == b
        assert first.render(a).tobytes() == second.render(b).tobytes()
        for lang in ("en", "zh"):
            assert first.caption(a, lang) == second.caption(b, lang)


def test_world_seed_and_index_change_the_scene():
    world = DemoWorld()
    assert world.scene(0, "train") != world.scene(1, "train")
    assert world.scene(5, "train").objects != DemoWorld(seed=1).scene(5, "train").objects
    assert world.render(world.scene(0, "train")).tobytes() != world.render(world.scene(1, "train")).tobytes()


def test_split_seed_ranges_are_disjoint_and_scenes_stay_in_their_split():
    for a, b in itertools.combinations(SPLITS, 2):
        ra, rb = split_seed_range(a), split_seed_range(b)
        assert ra.stop <= rb.start or rb.stop <= ra.start
    world = DemoWorld()
    train_seeds = {world.scene(i, "train").seed for i in range(300)}
    train_range = split_seed_range("train")
    for split in ("val", "test"):
        for index in list(range(300)) + [10**9]:
            seed = world.scene(index, split).seed
            assert seed in split_seed_range(split) and seed not in train_range and seed not in train_seeds
            assert world.labelled_scene(index, "shape", split).seed in split_seed_range(split)
    # labelled single-object scenes never reuse a captioned scene's seed
    assert scene_seed(0, "test", labelled=True) != scene_seed(0, "test")


def test_bad_split_index_and_size_are_refused():
    world = DemoWorld()
    with pytest.raises(CompressError, match="split"):
        world.scene(0, "training")
    with pytest.raises(CompressError, match="out of range"):
        world.scene(-1, "train")
    with pytest.raises(CompressError, match="out of range"):
        world.scene(10**13, "train")
    with pytest.raises(CompressError, match="image_size"):
        DemoWorld(image_size=4)
    with pytest.raises(CompressError, match="size"):
        open_demo("val", size=0)


@pytest.mark.parametrize("attribute, values", [("shape", [s.key for s in SHAPES]), ("color", [c.key for c in COLORS])])
def test_every_shape_and_colour_renders_and_differs(attribute, values):
    world = DemoWorld(image_size=64)
    background = pixels(world.render(replace(plain_scene(), objects=())))
    drawn = {}
    for value in values:
        image = pixels(world.render(plain_scene(**{attribute: value})))
        covered = np.abs(image - background).sum(axis=-1) > 60
        assert covered.mean() > 0.03, f"{value} is hardly visible"
        drawn[value] = image
    for a, b in itertools.combinations(values, 2):
        assert np.abs(drawn[a] - drawn[b]).mean() > 1.0, f"{a} and {b} render alike"


def test_colours_are_drawn_in_their_colour():
    world = DemoWorld(image_size=64)
    for colour in COLORS:
        centre = pixels(world.render(plain_scene(color=colour.key)))[32, 32]
        assert np.abs(centre - np.array(colour.rgb)).max() <= 2


def test_positions_and_sizes_move_and_scale_the_object():
    world = DemoWorld(image_size=64)
    background = pixels(world.render(replace(plain_scene(), objects=())))

    def mask(**attributes):
        return np.abs(pixels(world.render(plain_scene(**attributes))) - background).sum(axis=-1) > 60

    left, right, top, bottom = (mask(position=p) for p in ("left", "right", "top", "bottom"))
    columns, rows = np.arange(64)[None, :], np.arange(64)[:, None]
    assert (columns * left).sum() / left.sum() < 24 < 40 < (columns * right).sum() / right.sum()
    assert (rows * top).sum() / top.sum() < 24 < 40 < (rows * bottom).sum() / bottom.sum()
    assert mask(size="large").sum() > 1.8 * mask(size="small").sum()


@pytest.mark.parametrize("size", [32, 64, 96])
def test_any_resolution_renders_the_same_scene(size):
    scene = DemoWorld().scene(7, "val")
    image = DemoWorld(image_size=size).render(scene)
    assert image.mode == "RGB" and image.size == (size, size)
    reference = DemoWorld(image_size=32).render(scene).resize((16, 16))
    assert np.abs(pixels(image.resize((16, 16))) - pixels(reference)).mean() < 12


def test_captions_in_both_languages():
    world = DemoWorld()
    scenes = [world.scene(i, "train") for i in range(200)]
    assert any(len(s.objects) == 2 for s in scenes) and any(len(s.objects) == 1 for s in scenes)
    for scene in scenes:
        templates = SINGLE_TEMPLATES if len(scene.objects) == 1 else PAIR_TEMPLATES
        for variant in range(len(templates["en"])):
            english = world.caption(scene, "en", variant)
            chinese = world.caption(scene, "zh", variant)
            assert english.strip() and english.isascii() and " a a" not in english and " a o" not in english
            assert chinese.strip() and CJK.search(chinese)
            assert "{" not in english + chinese
    for lang in ("en", "zh"):
        assert len(SINGLE_TEMPLATES[lang]) >= 5 and len(PAIR_TEMPLATES[lang]) >= 3


def test_full_captions_name_every_attribute():
    scene = plain_scene(shape="star", color="orange", size="small", position="left")
    english, chinese = caption(scene, "en", 0), caption(scene, "zh", 0)
    assert english == "A photo of a small orange star on the left."
    assert chinese == "一个橙色的小星形在左边。"
    pair = replace(scene, objects=(scene.objects[0], replace(scene.objects[0], shape="heart", color="blue", position="right")))
    assert "heart" in caption(pair, "en", 0) and "右边" in caption(pair, "zh", 0)
    with pytest.raises(CompressError, match="variant"):
        caption(scene, "en", 99)
    with pytest.raises(CompressError, match="fr"):
        caption(scene, "fr")


def test_alphabet_covers_every_caption_and_prompt():
    chars = set(alphabet())

    def normalised(text: str) -> set[str]:
        return set(unicodedata.normalize("NFKC", text).lower())

    world = DemoWorld()
    for index in range(100):
        scene = world.scene(index, "train")
        for lang in ("en", "zh"):
            for variant in range(len(SINGLE_TEMPLATES[lang] if len(scene.objects) == 1 else PAIR_TEMPLATES[lang])):
                assert normalised(world.caption(scene, lang, variant)) <= chars
    for task in zero_shot_tasks():
        for lang in ("en", "zh"):
            for template in task.templates[lang]:
                for name in task.classnames[lang]:
                    assert normalised(template.format(name)) <= chars


def test_open_demo_dataset():
    data = open_demo("train", size=6, image_size=32)
    assert len(data) == 6 and len(open_demo("test")) == DEFAULT_SIZES["test"]
    samples = [data[i] for i in range(6)]
    assert all(isinstance(s, Sample) and s.image.size == (32, 32) for s in samples)
    assert [s.lang for s in samples] == ["en", "zh"] * 3
    assert len({s.key for s in samples}) == 6
    assert data.captions() == [(s.caption, s.lang) for s in samples]
    assert data[-1].key == samples[-1].key
    with pytest.raises(IndexError):
        data[6]
    assert not data.skipped and data.skip_log == []
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, collate_fn=list)
    assert {s.lang for s in next(iter(loader))} == {"en", "zh"}


def test_dataset_digest_is_stable_and_keyed_by_config():
    base = open_demo("train", size=10)
    assert base.digest() == open_demo("train", size=10).digest()
    assert re.fullmatch(r"[0-9a-f]{64}", base.digest())
    others = [
        open_demo("val", size=10),
        open_demo("train", size=11),
        open_demo("train", size=10, image_size=32),
        open_demo("train", size=10, seed=3),
    ]
    assert len({base.digest(), *(o.digest() for o in others)}) == 5


def test_zero_shot_tasks_are_bilingual():
    assert {"shape", "color", "color_shape"} <= set(DEMO_TASKS)
    for task in zero_shot_tasks():
        for lang in ("en", "zh"):
            assert len(task.classnames[lang]) == task.num_classes
            assert len(set(task.classnames[lang])) == task.num_classes
            assert len(task.templates[lang]) >= 3 and all("{}" in t for t in task.templates[lang])
        assert all(CJK.search(n) for n in task.classnames["zh"])
    assert DEMO_TASKS["color_shape"].num_classes == len(COLORS) * len(SHAPES) and len(SHAPES) >= 8 and len(COLORS) >= 8


def test_task_samples_are_balanced_single_object_and_correctly_labelled():
    world = DemoWorld(image_size=32)
    images, labels = task_samples("shape", count=24, image_size=32)
    assert len(images) == 24 and [images[0].size] == [(32, 32)]
    assert np.bincount(labels).tolist() == [3] * 8
    task = DEMO_TASKS["color_shape"]
    for index in range(70):
        scene = world.labelled_scene(index, task)
        assert len(scene.objects) == 1
        obj = scene.objects[0]
        assert task.classnames["en"][index % task.num_classes] == f"{obj.color} {obj.shape}"
    with pytest.raises(CompressError, match="unknown demo task"):
        task_samples("texture", count=2)


def test_retrieval_pairs_align_images_and_captions():
    images, english = retrieval_pairs("val", count=5, lang="en", image_size=32)
    _, chinese = retrieval_pairs("val", count=5, lang="zh", image_size=32)
    world = DemoWorld(image_size=32)
    assert len(images) == len(english) == 5
    assert english[2] == world.caption(world.scene(2, "val"), "en", 0)
    assert all(CJK.search(c) for c in chinese) and all(c.isascii() for c in english)
    assert images[2].tobytes() == world.render(world.scene(2, "val")).tobytes()


class ColourOracle:
    """Names the demo colour covering most pixels; reads colour words from text. Knows no shapes."""

    embed_dim = len(COLORS)
    languages = ("en", "zh")
    name = "colour-oracle"

    def encode_images(self, images):
        rows = []
        for image in images:
            clean = np.asarray(image.filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
            counts = [(np.linalg.norm(clean - np.array(c.rgb), axis=-1) < 40).sum() for c in COLORS]
            rows.append(torch.nn.functional.one_hot(torch.tensor(int(np.argmax(counts))), len(COLORS)).float())
        return torch.stack(rows)

    def encode_texts(self, texts, lang):
        rows = []
        for text in texts:
            row = torch.tensor([float(c.name(lang) in text) for c in COLORS])
            rows.append(row / row.norm())
        return torch.stack(rows)


def test_evaluate_demo_tasks_scores_an_oracle_and_checks_languages():
    results = evaluate_demo_tasks(ColourOracle(), count=32, tasks=["color"])
    assert set(results) == {("color", "en"), ("color", "zh")}
    assert results[("color", "en")] == 1.0 and results[("color", "zh")] == 1.0
    english_only = ColourOracle()
    english_only.languages = ("en",)
    assert set(evaluate_demo_tasks(english_only, count=8, tasks=["color"])) == {("color", "en")}
    with pytest.raises(CompressError, match="zh"):
        evaluate_demo_tasks(english_only, langs=("en", "zh"), count=8, tasks=["color"])


def test_positions_and_terms_have_both_names():
    for term in (*SHAPES, *COLORS, *POSITIONS):
        assert term.en.isascii() and CJK.search(term.zh)


def test_caption_claims_name_exactly_the_attributes_the_caption_states():
    world = DemoWorld()
    checked = 0
    for index in range(60):
        scene = world.scene(index, "train")
        if len(scene.objects) != 1:
            continue
        obj = scene.objects[0]
        names = {
            "shape": (SHAPES, obj.shape),
            "color": (COLORS, obj.color),
            "size": (SIZES, obj.size),
            "position": (POSITIONS, obj.position),
        }
        for variant in range(len(SINGLE_TEMPLATES["en"])):
            (claim,) = caption_claims(scene, variant)
            assert claim == {k: getattr(obj, k) for k in claim}
            for lang in ("en", "zh"):
                text = world.caption(scene, lang, variant).lower()
                for attribute, (terms, key) in names.items():
                    word = next(t for t in terms if t.key == key).name(lang)
                    assert (word in text) == (attribute in claim), (text, attribute)
                checked += 1
    assert checked > 300


def test_truth_matrix_counts_every_true_caption():
    circle = plain_scene(shape="circle", color="red", size="large", position="left")
    blue_circle = plain_scene(shape="circle", color="blue", size="small", position="top")
    square = plain_scene(shape="square", color="red", size="large", position="left")
    pair = replace(circle, objects=(circle.objects[0], replace(square.objects[0], position="right")))
    swapped = replace(pair, objects=tuple(reversed(pair.objects)))
    scenes = [circle, blue_circle, square, pair, swapped]
    shape_only = caption_claims(circle, SINGLE_CLAIMS.index(("shape",)))
    full = caption_claims(circle, 0)
    colour_position = caption_claims(circle, SINGLE_CLAIMS.index(("color", "position")))
    both = caption_claims(pair, 0)
    truth = truth_matrix([shape_only, full, colour_position, both], scenes)
    assert truth.tolist() == [
        [True, True, False, False, False],  # "a photo of a circle." fits both single circles
        [True, False, False, False, False],
        [True, False, True, False, False],  # "something red on the left."
        [False, False, False, True, True],  # a pair caption fits the pair whatever the object order
    ]


def test_shape_names_are_unambiguous_inside_captions():
    for a, b in itertools.permutations(SHAPES, 2):
        assert a.en not in b.en and a.zh not in b.zh
    for a, b in itertools.permutations(COLORS, 2):
        assert a.en not in b.en and a.zh not in b.zh
