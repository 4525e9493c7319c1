"""The shipped class names and templates: right counts, right order, usable templates, both languages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from script_modules import load_script

from compress.errors import CompressError
from compress.eval import catalog

# ELEVATER's 20 datasets and ImageNet-1K with their class counts and primary metrics.
EXPECTED = {
    "caltech-101": (102, "mean_per_class"),
    "cifar-10": (10, "top1"),
    "cifar-100": (100, "top1"),
    "country211": (211, "top1"),
    "dtd": (47, "top1"),
    "eurosat": (10, "top1"),
    "fer-2013": (7, "top1"),
    "fgvc-aircraft-2013b-variants102": (100, "mean_per_class"),
    "food-101": (101, "top1"),
    "gtsrb": (43, "top1"),
    "hateful-memes": (2, "roc_auc"),
    "kitti-distance": (4, "top1"),
    "mnist": (10, "top1"),
    "oxford-flower-102": (102, "mean_per_class"),
    "oxford-iiit-pets": (37, "mean_per_class"),
    "patch-camelyon": (2, "top1"),
    "rendered-sst2": (2, "top1"),
    "resisc45": (45, "top1"),
    "stanford-cars": (196, "top1"),
    "voc-2007-classification": (20, "map_11pt"),
    "imagenet-1k": (1000, "top1"),
}


def test_every_dataset_is_shipped():
    assert catalog.builtin_names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_class_names_have_the_dataset_class_count(name, lang):
    dataset = catalog.get_builtin(name)
    count, primary = EXPECTED[name]
    assert dataset.num_classes == count
    assert dataset.primary_metric == primary
    names = dataset.classnames(lang)
    assert len(names) == count
    assert all(n.strip() == n and n for n in names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chinese_names_are_unique_and_translated(name):
    dataset = catalog.get_builtin(name)
    zh, en = dataset.classnames("zh"), dataset.classnames("en")
    assert len(set(zh)) == len(zh)
    # every Chinese name has Chinese characters, unless it is written the same in both (digits, "iPod")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in z) or z == e or e.endswith(z) for z, e in zip(zh, en))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_template_has_one_slot(name, lang):
    templates = catalog.get_builtin(name).templates(lang)
    assert templates
    assert all(t.count("{}") == 1 for t in templates)


def open_clip_metadata():
    """open_clip's zero_shot_metadata.py (CLIP's cleaned ImageNet names), read without importing
    open_clip itself, whose package import pulls in timm and transformers."""
    spec = importlib.util.find_spec("open_clip")
    path = Path(spec.origin).parent / "zero_shot_metadata.py"
    return load_script(path, "open_clip_zero_shot_metadata")


def test_imagenet_english_names_are_clips_cleaned_list_in_index_order():
    metadata = open_clip_metadata()
    imagenet = catalog.get_builtin("imagenet-1k")
    assert imagenet.classnames("en") == list(metadata.IMAGENET_CLASSNAMES)
    assert imagenet.templates("en") == [t("{}") for t in metadata.OPENAI_IMAGENET_TEMPLATES]
    zh = imagenet.classnames("zh")
    assert (zh[0], zh[1], zh[207], zh[388], zh[999]) == ("丁鲷", "金鱼", "金毛寻回犬", "大熊猫", "卫生纸")


def test_known_orders():
    cifar = catalog.get_builtin("cifar-10")
    assert cifar.classnames("en") == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert cifar.classnames("zh") == ["飞机", "汽车", "鸟", "猫", "鹿", "狗", "青蛙", "马", "船", "卡车"]
    assert catalog.get_builtin("cifar-100").classnames("en")[:3] == ["apple", "aquarium fish", "baby"]
    assert catalog.get_builtin("fer-2013").classnames("en") == [
        "angry",
        "disgusted",
        "fearful",
        "happy",
        "sad",
        "surprised",
        "neutral",
    ]
    assert catalog.get_builtin("hateful-memes").classnames("en") == ["meme", "hatespeech meme"]  # positive is 1


@pytest.mark.parametrize(
    "folder, name",
    [
        ("eurosat_clip", "eurosat"),
        ("cifar_10_20211007", "cifar-10"),
        ("Caltech101", "caltech-101"),
        ("voc2007", "voc-2007-classification"),
        ("ImageNet", "imagenet-1k"),
    ],
)
def test_folder_names_find_their_dataset(folder, name):
    assert catalog.find_builtin(folder).name == name


def test_unknown_dataset_lists_the_known_ones():
    assert catalog.find_builtin("my-photos") is None
    with pytest.raises(CompressError, match="known: caltech-101, cifar-10"):
        catalog.get_builtin("my-photos")


def test_user_files_are_read_strictly(tmp_path):
    good = tmp_path / "names.txt"
    good.write_text("\ufeffcat\ndog\n\n", encoding="utf-8")
    assert catalog.read_lines(good) == ["cat", "dog"]
    (tmp_path / "gap.txt").write_text("cat\n\ndog\n")
    with pytest.raises(CompressError, match="line 2 is blank"):
        catalog.read_lines(tmp_path / "gap.txt")
    with pytest.raises(CompressError, match="needs exactly one"):
        catalog.check_templates(["a photo of a cat."], "templates.txt")
