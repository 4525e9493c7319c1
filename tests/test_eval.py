"""Zero-shot classification and retrieval, checked against hand-computed values.

The encoder here is a fake whose predictions are fixed by construction: an image's embedding is a
score vector looked up by the image's colour, and a text's embedding is the one-hot vector of the
class word it contains. So the similarity of image i to class k is exactly the score we chose, and
every metric can be worked out by hand.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image

from compress.api import load_model
from compress.errors import CompressError
from compress.eval import metrics as M
from compress.eval.datasets import ClassificationSet, open_classification
from compress.eval.models import model_label, unique_labels
from compress.eval.report import write_eval_report
from compress.eval.retrieval import open_retrieval
from compress.eval.runner import evaluate_models, evaluate_retrieval, evaluate_zero_shot

EN = ["red", "green", "blue", "yellow", "purple", "orange", "grey"]
ZH = ["红色", "绿色", "蓝色", "黄色", "紫色", "橙色", "灰色"]
# Class folders padded every way ELEVATER copies do it.
FOLDERS = ["000", "1", "02", "003", "4", "05", "006"]

# (label, classes ranked from most to least similar) for each test image.
IMAGES = [
    (0, [0, 1, 2, 3, 4, 5, 6]),  # top-1 hit
    (0, [1, 0, 2, 3, 4, 5, 6]),  # top-1 miss, label 2nd
    (1, [1, 0, 2, 3, 4, 5, 6]),  # hit
    (2, [3, 4, 5, 6, 0, 1, 2]),  # label last: top-5 miss
    (2, [2, 0, 1, 3, 4, 5, 6]),  # hit
    (3, [0, 1, 2, 4, 3, 5, 6]),  # label 5th: top-5 hit
    (4, [4, 0, 1, 2, 3, 5, 6]),  # hit
    (5, [0, 1, 2, 3, 4, 5, 6]),  # label 6th: top-5 miss
    (6, [6, 0, 1, 2, 3, 4, 5]),  # hit
    (6, [6, 5, 0, 1, 2, 3, 4]),  # hit
]
# By hand: top-1 hits are images 0, 2, 4, 6, 8, 9; top-5 misses are images 3 and 7;
# per-class top-1 recall is 1/2, 1, 1/2, 0, 1, 0, 1.
EXPECTED_TOP1 = 6 / 10
EXPECTED_TOP5 = 8 / 10
EXPECTED_MEAN_PER_CLASS = (0.5 + 1 + 0.5 + 0 + 1 + 0 + 1) / 7


def pixel(i: int) -> tuple[int, int, int]:
    return (20 * i + 10, 90, 160)


def ranking_scores(ranking: list[int]) -> list[float]:
    """Scores 7, 6, ..., 1 in ranking order: every image vector has the same norm."""
    scores = [0.0] * len(ranking)
    for position, cls in enumerate(ranking):
        scores[cls] = float(len(ranking) - position)
    return scores


class ColourEncoder:
    """Image embedding: the score vector of the image's colour. Text: one-hot of its class word."""

    has_image_tower = True
    has_text_tower = True

    def __init__(self, vectors: dict, names: dict[str, list[str]], languages=("en", "zh")):
        self.vectors = vectors
        self.names = names
        self.languages = tuple(languages)
        self.embed_dim = len(next(iter(names.values())))
        self.prompts: list[tuple[str, str]] = []

    def encode_images(self, images):
        rows = torch.tensor([self.vectors[image.getpixel((0, 0))] for image in images], dtype=torch.float32)
        return rows / rows.norm(dim=1, keepdim=True)

    def encode_texts(self, texts, lang):
        rows = []
        for text in texts:
            self.prompts.append((text, lang))
            hits = [name for name in self.names[lang] if name in text]
            assert hits, f"no {lang} class word in {text!r}"
            rows.append(torch.nn.functional.one_hot(torch.tensor(self.names[lang].index(max(hits, key=len))), self.embed_dim))
        return torch.stack(rows).float()


def colour_encoder(**kw) -> ColourEncoder:
    vectors = {pixel(i): ranking_scores(ranking) for i, (_, ranking) in enumerate(IMAGES)}
    return ColourEncoder(vectors, {"en": EN, "zh": ZH}, **kw)


def save_png(path: Path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path)


def make_elevater(root: Path) -> Path:
    """label.txt, label_cn.txt, templates, test/<padded id>/*.png, one corrupt image, one stray file."""
    root.mkdir(parents=True)
    (root / "label.txt").write_text("\n".join(EN) + "\n", encoding="utf-8")
    (root / "label_cn.txt").write_text("\n".join(ZH) + "\n", encoding="utf-8")
    (root / "templates.en.txt").write_text("a photo of a {}.\na {} square.\n", encoding="utf-8")
    (root / "templates.zh.txt").write_text("一张{}的照片。\n", encoding="utf-8")
    for i, (label, _) in enumerate(IMAGES):
        save_png(root / "test" / FOLDERS[label] / f"img{i}.png", pixel(i))
    (root / "test" / FOLDERS[3] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "test" / FOLDERS[1] / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def elevater(tmp_path) -> Path:
    return make_elevater(tmp_path / "colours")


# --- metrics against hand-computed values ----------------------------------------------------


def test_eleven_point_average_precision_by_hand():
    # ranked: P N P N N -> precision 1, .5, 2/3, .5, .4 at recall .5, .5, 1, 1, 1
    # levels 0-0.5 take 1, levels 0.6-1.0 take 2/3: (6 + 5 * 2/3) / 11 = 28/33
    ap = M.average_precision_11pt([0.9, 0.8, 0.7, 0.6, 0.5], [True, False, True, False, False])
    assert ap == pytest.approx(28 / 33)


def test_mean_average_precision_over_present_classes():
    logits = torch.tensor([[0.9, 0.6, 0.0], [0.8, 0.3, 0.0], [0.1, 0.7, 0.0]])
    labels = torch.tensor([0, 1, 1])
    # class 0 ranks its one positive first: AP 1. class 1 ranks P N P: AP 28/33. class 2 has no image.
    assert M.mean_average_precision_11pt(logits, labels) == pytest.approx((1 + 28 / 33) / 2)


def test_roc_auc_by_hand_with_and_without_ties():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered
    assert M.roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    # a tie counts half: (0.5 + 1) / 2
    assert M.roc_auc([0.5, 0.5, 0.9], [True, False, True]) == pytest.approx(0.75)
    with pytest.raises(M.UndefinedMetricError):
        M.roc_auc([0.1, 0.2], [True, True])


def test_retrieval_recalls_by_hand():
    # 7 captions, 2 images; captions 0-5 describe image 0, caption 6 image 1
    image0 = [0.1, 0.2, 0.3, 0.4, 0.55, 0.6, 0.7]
    image1 = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    similarity = torch.tensor([image0, image1]).T  # [texts, images]
    recalls = M.retrieval_recalls(similarity, [0, 0, 0, 0, 0, 0, 1])
    # image 0: best caption is caption 6 (not its own); its own captions 5, 4, 3, 2 follow -> R@1 0, R@5 hit
    # image 1: its caption ranks last of 7 -> hit only at R@10
    assert recalls["i2t_R@1"] == 0.0
    assert recalls["i2t_R@5"] == pytest.approx(0.5)
    assert recalls["i2t_R@10"] == 1.0
    # captions 4 and 5 rank image 0 first; the others rank the wrong image first
    assert recalls["t2i_R@1"] == pytest.approx(2 / 7)
    assert recalls["t2i_R@5"] == 1.0


# --- datasets ------------------------------------------------------------------------------


def test_elevater_layout_is_read_with_any_padding(elevater):
    dataset = open_classification(elevater)
    assert dataset.name == "colours"
    assert dataset.classnames == {"en": EN, "zh": ZH}
    assert dataset.name_sources == {"en": str(elevater / "label.txt"), "zh": str(elevater / "label_cn.txt")}
    assert dataset.templates["en"] == ["a photo of a {}.", "a {} square."]
    assert sorted(dataset.labels) == sorted([label for label, _ in IMAGES] + [3])  # the corrupt file is listed
    assert dataset.ignored_files == 1
    assert dataset.primary_metric == M.TOP1
    # the split folder itself opens the same dataset
    assert open_classification(elevater / "test").labels == dataset.labels


def test_every_metric_on_the_elevater_set_matches_hand_values(elevater):
    encoder = colour_encoder()
    result = evaluate_zero_shot(encoder, open_classification(elevater), ["en", "zh"], batch_size=4)
    assert result["num_images"] == 11
    assert result["skipped_images"] == 1  # the corrupt PNG: counted, not fatal
    for lang in ("en", "zh"):
        metrics = result["metrics"][lang]
        assert metrics[M.TOP1] == pytest.approx(EXPECTED_TOP1)
        assert metrics[M.TOP5] == pytest.approx(EXPECTED_TOP5)
        assert metrics[M.MEAN_PER_CLASS] == pytest.approx(EXPECTED_MEAN_PER_CLASS)
    # the folder's templates were used, each in its own language
    assert ("a red square.", "en") in encoder.prompts
    assert ("一张红色的照片。", "zh") in encoder.prompts
    assert all(lang == "zh" for text, lang in encoder.prompts if "红色" in text)


def test_image_folder_with_name_file_and_folder_names(tmp_path):
    root = tmp_path / "pets_small"
    save_png(root / "black_cat" / "a.png", (0, 0, 0))
    save_png(root / "white_dog" / "b.png", (255, 255, 255))
    (root / "classnames.zh.txt").write_text("黑猫\n白狗\n", encoding="utf-8")
    dataset = open_classification(root)
    assert dataset.classnames == {"en": ["black cat", "white dog"], "zh": ["黑猫", "白狗"]}
    assert dataset.name_sources == {"en": "folder names", "zh": str(root / "classnames.zh.txt")}
    assert dataset.labels == [0, 1]


def test_known_dataset_name_brings_shipped_names_and_primary_metric(tmp_path):
    root = tmp_path / "caltech101"
    for i, name in enumerate(["000", "001"]):
        save_png(root / "test" / name / "x.png", pixel(i))
    (root / "label.txt").write_text("\n".join(f"class {i}" for i in range(102)) + "\n")
    dataset = open_classification(root)
    assert dataset.primary_metric == M.MEAN_PER_CLASS
    assert dataset.classnames["en"][0] == "class 0"  # the folder's own file wins
    assert dataset.name_sources["zh"] == "shipped caltech-101"
    assert dataset.classnames["zh"][:3] == ["背景", "偏离中心的人脸", "居中的人脸"]


def test_user_class_name_file_overrides_and_is_checked(elevater, tmp_path):
    names = tmp_path / "zh.txt"
    names.write_text("\n".join(f"颜色{i}" for i in range(7)) + "\n", encoding="utf-8")
    dataset = open_classification(elevater, classnames={"zh": names})
    assert dataset.classnames["zh"][3] == "颜色3"
    assert dataset.name_sources["zh"] == str(names)
    names.write_text("只有一个\n", encoding="utf-8")
    with pytest.raises(CompressError, match="1 zh class names but .* has 7 classes"):
        open_classification(elevater, classnames={"zh": names})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: (r / "test" / "4").rename(r / "test" / "four"), "named by class id"),
        (lambda r: (r / "test" / "4").rename(r / "test" / "9"), "class id 9 but the label files name 7"),
        (
            lambda r: (r / "label_cn.txt").write_text("红色\n", encoding="utf-8"),
            "label_cn.txt: 1 zh class names but .* has 7 classes",
        ),
        (lambda r: (r / "label.txt").write_text("red\n\ngreen\n"), "line 2 is blank"),
    ],
)
def test_broken_elevater_folders_are_refused_with_the_reason(elevater, damage, message):
    damage(elevater)
    with pytest.raises(CompressError, match=message):
        open_classification(elevater)


def test_missing_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(CompressError, match="no such dataset folder"):
        open_classification(tmp_path / "nope")
    save_png(tmp_path / "unlabelled" / "test" / "0" / "a.png", (1, 2, 3))
    with pytest.raises(CompressError, match="but no label.txt or label_cn.txt"):
        open_classification(tmp_path / "unlabelled")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompressError, match="not a dataset"):
        open_classification(tmp_path / "empty")


def test_limit_keeps_every_class(elevater):
    dataset = open_classification(elevater).subset(7)
    assert len(dataset) == 7
    assert sorted(set(dataset.labels)) == list(range(7))


# --- primary metrics through the whole path --------------------------------------------------


def test_hateful_memes_reports_roc_auc(tmp_path):
    # unit vectors (meme score, hateful score): the margin hateful - meme orders the images
    cases = [(1, (0.0, 1.0)), (1, (0.8, 0.6)), (0, (0.6, 0.8)), (0, (1.0, 0.0)), (1, (0.96, 0.28))]
    root = tmp_path / "hateful-memes"
    (root).mkdir()
    (root / "label.txt").write_text("meme\nhatespeech meme\n")
    vectors = {}
    for i, (label, vector) in enumerate(cases):
        save_png(root / "test" / str(label) / f"{i}.png", pixel(i))
        vectors[pixel(i)] = list(vector)
    encoder = ColourEncoder(vectors, {"en": ["meme", "hatespeech meme"], "zh": ["表情包", "仇恨言论表情包"]})
    result = evaluate_zero_shot(encoder, open_classification(root), ["en", "zh"])
    assert result["primary_metric"] == M.ROC_AUC
    for lang in ("en", "zh"):  # zh names come from the shipped catalog
        metrics = result["metrics"][lang]
        # positive margins 1, -0.2, -0.68 against negative 0.2, -1: 4 of 6 pairs ordered
        assert metrics[M.ROC_AUC] == pytest.approx(4 / 6)
        assert metrics[M.TOP1] == pytest.approx(2 / 5)
        assert metrics[M.MEAN_PER_CLASS] == pytest.approx((1 / 2 + 1 / 3) / 2)
        assert metrics[M.TOP5] == 1.0


def test_in_memory_task_with_map_primary_metric():
    # scores for (red, green, blue), each a permutation of 3, 2, 1 so all images have one norm
    vectors = {pixel(0): [3, 2, 1], pixel(1): [1, 3, 2], pixel(2): [2, 1, 3]}
    images = [Image.new("RGB", (32, 32), pixel(i)) for i in range(3)]
    task = types.SimpleNamespace(name="demo-colours", classnames={"en": EN[:3], "zh": ZH[:3]}, templates={"en": ["{}"]})
    dataset = ClassificationSet.from_task(task, images, [0, 1, 1])
    assert dataset.templates["zh"][0] == "一张{}的照片。"  # a language without templates gets the defaults
    dataset.primary_metric = M.MAP_11PT
    encoder = ColourEncoder(vectors, {"en": EN[:3], "zh": ZH[:3]})
    metrics = evaluate_zero_shot(encoder, dataset, ["en"])["metrics"]["en"]
    # red: its one image scores highest -> AP 1. green: P (3), N (2), P (1) -> AP 28/33. blue: no image.
    assert metrics[M.MAP_11PT] == pytest.approx((1 + 28 / 33) / 2)
    assert metrics[M.TOP1] == pytest.approx(2 / 3)  # the third image scores blue highest


# --- retrieval ------------------------------------------------------------------------------

RETRIEVAL_VECTORS = {
    # scores for red, green, blue, yellow, purple, orange, grey: each a permutation of 7..1
    "P": [6, 7, 5, 3, 2, 4, 1],
    "Q": [7, 5, 6, 4, 1, 3, 2],
    "R": [3, 4, 2, 6, 7, 5, 1],
}
RETRIEVAL_COLOURS = {"P": (200, 10, 10), "Q": (10, 200, 10), "R": (10, 10, 200)}


def make_manifest(tmp_path) -> Path:
    for key, colour in RETRIEVAL_COLOURS.items():
        save_png(tmp_path / "img" / f"{key}.png", colour)
    (tmp_path / "img" / "S.png").write_bytes(b"broken")
    pairs = [
        ("P", "red", "en"),
        ("P", "yellow", "en"),
        ("Q", "blue", "en"),
        ("R", "yellow", "en"),
        ("R", "purple", "en"),
        ("S", "grey", "en"),
        ("missing", "green", "en"),
        ("P", "红色", "zh"),
        ("Q", "蓝色", "zh"),
        ("R", "紫色", "zh"),
    ]
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text(
        "\n".join(json.dumps({"image": f"img/{k}.png", "caption": c, "lang": lang}, ensure_ascii=False) for k, c, lang in pairs)
        + "\n",
        encoding="utf-8",
    )
    return manifest


def test_retrieval_on_a_manifest_matches_hand_values(tmp_path):
    encoder = ColourEncoder({RETRIEVAL_COLOURS[k]: v for k, v in RETRIEVAL_VECTORS.items()}, {"en": EN, "zh": ZH})
    result = evaluate_retrieval(encoder, open_retrieval(make_manifest(tmp_path)), ["en", "zh"])
    assert result["num_images"] == 4 and result["skipped_images"] == 1
    assert any("manifest lines skipped: 1 missing_file" in note for note in result["notes"])
    en, zh = result["metrics"]["en"], result["metrics"]["zh"]
    # text->image: red ranks Q first (7 > 6), P's yellow ranks R first; blue, R's yellow, purple hit
    assert en["t2i_R@1"] == pytest.approx(3 / 5)
    # image->text: P's best caption is red (its own); Q's best is red (P's); R's best is purple
    assert en["i2t_R@1"] == pytest.approx(2 / 3)
    assert en["i2t_R@5"] == en["t2i_R@5"] == en["i2t_R@10"] == 1.0
    assert en["mean_recall"] == pytest.approx((2 / 3 + 3 / 5 + 4) / 6)
    # Chinese: 红色 ranks Q first; 蓝色 and 紫色 hit. Q's best caption is 红色 (P's)
    assert zh["t2i_R@1"] == pytest.approx(2 / 3)
    assert zh["i2t_R@1"] == pytest.approx(2 / 3)


# --- several models, report, command line ----------------------------------------------------


def test_models_compared_in_one_pass_and_report_written(elevater, tmp_path):
    perfect = ColourEncoder(
        {pixel(i): ranking_scores([label] + [c for c in range(7) if c != label]) for i, (label, _) in enumerate(IMAGES)},
        {"en": EN},
        languages=("en",),
    )
    results = evaluate_models({"fixed": colour_encoder(), "perfect": perfect}, [open_classification(elevater)], ["en", "zh"])
    assert results.value("fixed", "colours", "en", M.TOP1) == pytest.approx(EXPECTED_TOP1)
    assert results.value("perfect", "colours", "en", M.TOP1) == 1.0
    assert results.value("perfect", "colours", "zh", M.TOP1) is None
    assert any("perfect: does not serve zh" in note for note in results.notes)
    written = write_eval_report(results, tmp_path / "report")
    data = json.loads((tmp_path / "report" / "eval.json").read_text(encoding="utf-8"))
    assert data["results"]["fixed"]["colours"]["zh"]["top5"] == pytest.approx(EXPECTED_TOP5)
    assert data["datasets"]["colours"]["skipped_images"] == 1
    assert {"model": "perfect", "dataset": "colours", "lang": "en", "metric": "top1", "value": 1.0} in data["rows"]
    assert sorted(p.name for p in written["charts"]) == ["colours.en.png", "colours.zh.png"]
    for chart in written["charts"]:
        with Image.open(chart) as image:
            assert image.format == "PNG" and image.width > 100


def test_cli_eval_writes_json_and_charts(elevater, tmp_path, monkeypatch, capsys):
    import compress.api
    from compress import cli

    vectors = {pixel(i): ranking_scores(ranking) for i, (_, ranking) in enumerate(IMAGES)}
    vectors.update({RETRIEVAL_COLOURS[k]: v for k, v in RETRIEVAL_VECTORS.items()})
    encoder = ColourEncoder(vectors, {"en": EN, "zh": ZH})
    monkeypatch.setattr(compress.api, "load_model", lambda spec: encoder if spec == "colour-fake" else pytest.fail(spec))
    manifest = make_manifest(tmp_path / "retrieval")
    out = tmp_path / "out"
    code = cli.main(
        ["eval", "--model", "colour-fake", "--dataset", str(elevater), "--retrieval", str(manifest), "--out", str(out)]
    )
    assert code == 0
    data = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert data["results"]["colour-fake"]["colours"]["en"]["top1"] == pytest.approx(EXPECTED_TOP1)
    assert data["results"]["colour-fake"]["pairs"]["zh"]["t2i_R@1"] == pytest.approx(2 / 3)
    assert {p.name for p in out.glob("*.png")} == {"colours.en.png", "colours.zh.png", "pairs.en.png", "pairs.zh.png"}
    assert "zero-shot classification" in capsys.readouterr().out


def test_cli_bad_dataset_path_is_one_line_error(tmp_path, capsys):
    from compress import cli

    code = cli.main(["eval", "--model", "demo", "--dataset", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"compress eval: error: {tmp_path / 'missing'}: no such dataset folder"


# --- model specs ----------------------------------------------------------------------------


def test_bundle_folder_needs_the_bundle_module(tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "compress.bundle", None)
    with pytest.raises(CompressError, match="bundle support not installed"):
        load_model(str(bundle))
    fake = types.ModuleType("compress.bundle")
    fake.BundleEncoder = lambda folder: ("bundle encoder", Path(folder))
    monkeypatch.setitem(sys.modules, "compress.bundle", fake)
    assert load_model(str(bundle)) == ("bundle encoder", bundle)


def test_student_folder_goes_through_build_student(tmp_path, monkeypatch):
    import compress.api

    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "student.json").write_text("{}")
    calls = []

    class Student:
        def eval(self):
            calls.append("eval")
            return self

    monkeypatch.setattr(compress.api, "build_student", lambda spec: calls.append(Path(spec)) or Student())
    assert isinstance(load_model(str(folder)), Student)
    assert calls == [folder, "eval"]


def test_unknown_model_specs_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompressError, match="neither a bundle"):
        load_model(str(tmp_path / "empty"))
    with pytest.raises(CompressError, match="no such model folder"):
        load_model("./no/such/student")
    with pytest.raises(CompressError, match="unknown teacher plugin 'no-such-teacher'"):
        load_model("no-such-teacher")


def test_report_names_are_short_and_unique(tmp_path):
    assert unique_labels(["a", "a", "a#2", "b"]) == ["a", "a#2", "a#2#2", "b"]
    assert model_label("altclip:/models/altclip-m9") == "altclip:altclip-m9"
    assert model_label("open-clip:ViT-B-16") == "open-clip:ViT-B-16"
    (tmp_path / "student-7").mkdir()
    assert model_label(str(tmp_path / "student-7")) == "student-7"


def test_modules_are_evaluated_in_eval_mode_and_restored(elevater):
    class ColourModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = colour_encoder()
            self.languages = ("en",)
            self.modes = set()

        def encode_images(self, images):
            self.modes.add(self.training)
            return self.inner.encode_images(images)

        def encode_texts(self, texts, lang):
            self.modes.add(self.training)
            return self.inner.encode_texts(texts, lang)

    module = ColourModule().train()
    result = evaluate_zero_shot(module, open_classification(elevater), ["en"])
    assert result["metrics"]["en"][M.TOP1] == pytest.approx(EXPECTED_TOP1)
    assert module.modes == {False}
    assert module.training


def test_in_memory_sets_are_checked():
    image = Image.new("RGB", (32, 32))
    with pytest.raises(CompressError, match="differ in length"):
        ClassificationSet.from_memory("x", [image], [0], {"en": ["a", "b"], "zh": ["甲"]})
    with pytest.raises(CompressError, match="label 2 is outside the 2 class names"):
        ClassificationSet.from_memory("x", [image], [2], {"en": ["a", "b"]})
    with pytest.raises(CompressError, match="needs exactly one"):
        ClassificationSet.from_memory("x", [image], [0], {"en": ["a"]}, {"en": ["a photo"]})


class HashEncoder:
    """Deterministic embeddings with no meaning: images by mean colour, texts by a seeded generator."""

    languages = ("en", "zh")
    embed_dim = 8

    def encode_images(self, images):
        rows = []
        for image in images:
            mean = torch.tensor(image.resize((1, 1)).getpixel((0, 0)), dtype=torch.float32)
            rows.append(torch.cat([mean, torch.ones(5)]))
        rows = torch.stack(rows)
        return rows / rows.norm(dim=1, keepdim=True)

    def encode_texts(self, texts, lang):
        rows = [torch.randn(8, generator=torch.Generator().manual_seed(sum(map(ord, t)))) for t in texts]
        rows = torch.stack(rows)
        return rows / rows.norm(dim=1, keepdim=True)


def test_cli_runs_demo_world_tasks_and_pairs(tmp_path, monkeypatch):
    import compress.api
    from compress import cli
    from compress.demo_world import get_task

    monkeypatch.setattr(compress.api, "load_model", lambda spec: HashEncoder())
    out = tmp_path / "out"
    code = cli.main(
        ["eval", "--model", "hash", "--dataset", "demo:color", "--retrieval", "demo", "--limit", "16", "--out", str(out)]
    )
    assert code == 0
    data = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    info = data["datasets"]["demo-color"]
    assert (info["num_images"], info["num_classes"]) == (16, len(get_task("color").classnames["en"]))
    for lang in ("en", "zh"):
        assert 0 <= data["results"]["hash"]["demo-color"][lang]["top1"] <= 1
        assert set(data["results"]["hash"]["demo-retrieval"][lang]) >= {"i2t_R@1", "t2i_R@10", "mean_recall"}
    assert data["datasets"]["demo-retrieval"]["num_images"] == 16
