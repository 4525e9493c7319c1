"""The bilingual student: default build, encoders, save/load, checkpoints, and ExecuTorch export."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import timm
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
from executorch.runtime import Runtime
from PIL import Image
from safetensors.torch import save_file

import compress
from compress.errors import CompressError
from compress.protocols import Student
from students.bilingual import BilingualStudent, build_bilingual_student
from students.mobilevit import MobileViTImageTower
from students.text_encoder import TextEncoder
from students.tokenizer import default_tokenizer, train_tokenizer

CAPTIONS = [
    "A photo of a red circle.",
    "一个红色的圆形。",
    "A blue square at the top.",
    "一个蓝色的正方形在上面。",
    "Two green triangles.",
    "两个绿色的三角形。",
    "A small yellow star.",
    "一个小的黄色星形。",
] * 4
TINY_TEXT = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16}


def images() -> list[Image.Image]:
    """Odd sizes and modes: the preprocessing must turn each into one RGB square."""
    return [
        Image.new("RGB", (80, 48), (200, 30, 30)),
        Image.new("RGBA", (50, 90), (30, 200, 30, 128)),
        Image.new("L", (64, 64), 140),
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (70, 70, 3), dtype=np.uint8)),
    ]


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.model"
    train_tokenizer(CAPTIONS, path, vocab_size=400)
    return path


@pytest.fixture(scope="module")
def tiny_student(tokenizer_path) -> BilingualStudent:
    torch.manual_seed(0)
    return build_bilingual_student({"embed_dim": 32, "text": TINY_TEXT, "tokenizer": str(tokenizer_path)})


@pytest.fixture(scope="module")
def default_student(tmp_path_factory):
    """The registered default (`compress.build_student()`), its tokenizer trained in a fresh cache."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("cache")
        patch.setenv("COMPRESS_CACHE_DIR", str(cache))
        student = compress.build_student()
        yield student, cache


def test_default_student_builds_from_the_registry(default_student):
    student, cache = default_student
    assert isinstance(student, BilingualStudent) and isinstance(student, Student)
    assert student.has_image_tower and student.has_text_tower
    assert student.embed_dim == 256 and student.languages == ("en", "zh")
    assert student.image_tower.model_name == "mobilevitv2_050" and student.image_size == 64
    assert student.max_length == 32 and len(student.text_tower.layers) == 4
    assert student.config["text"]["vocab_size"] == student.tokenizer.vocab_size <= 8000
    json.dumps(student.config)  # plain JSON-able
    cached = list(cache.glob("tokenizers/*/tokenizer.model"))
    assert len(cached) == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPRESS_CACHE_DIR", str(cache))
        assert default_tokenizer().digest == student.tokenizer.digest  # loaded back from the cache
    assert len(list(cache.glob("tokenizers/*/tokenizer.model"))) == 1


def test_default_tokenizer_covers_the_demo_chinese_characters(default_student):
    from compress.demo_world import open_demo

    tokenizer = default_student[0].tokenizer
    characters = {
        ch
        for caption, lang in open_demo("train", size=2000).captions()
        if lang == "zh"
        for ch in caption
        if "\u4e00" <= ch <= "\u9fff"
    }
    assert len(characters) > 20
    assert [ch for ch in sorted(characters) if tokenizer.piece_to_id(ch) == tokenizer.unk_id] == []


def test_default_student_encodes(default_student):
    student = default_student[0]
    assert student.encode_images(images()).shape == (4, 256)
    assert student.encode_texts(["A red circle.", "一个红色的圆形。"], "zh").shape == (2, 256)


def test_encoders_give_unit_vectors_and_keep_the_training_mode(tiny_student):
    tiny_student.train()
    tiny_student.image_tower.backbone.stem.eval()  # a frozen part keeps its own flag
    image_embeddings = tiny_student.encode_images(images())
    text_embeddings = tiny_student.encode_texts(["A red circle.", "一个红色的圆形。", ""], "en")
    assert image_embeddings.shape == (4, 32) and text_embeddings.shape == (3, 32)
    assert image_embeddings.dtype == torch.float32 and not image_embeddings.requires_grad
    assert torch.allclose(image_embeddings.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(text_embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert tiny_student.training and tiny_student.text_tower.training
    assert not tiny_student.image_tower.backbone.stem.training
    tiny_student.eval()
    # eval mode gives the same embeddings: batch statistics never leak into encode_images
    assert torch.allclose(tiny_student.encode_images(images()), image_embeddings, atol=1e-6)
    assert tiny_student.encode_images([]).shape == (0, 32)
    with pytest.raises(CompressError, match="languages en, zh; got 'fr'"):
        tiny_student.encode_texts(["un cercle rouge"], "fr")


def test_preprocessing_crops_the_centre_or_squashes(tokenizer_path):
    picture = Image.new("RGB", (192, 64), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 64, 64))  # red left third, blue elsewhere
    crop = build_bilingual_student({"text": None})
    squash = build_bilingual_student({"text": None, "image": {"resize": "squash", "mean": [0.5] * 3, "std": [0.5] * 3}})
    cropped, squashed = crop.preprocess_images([picture])[0], squash.preprocess_images([picture])[0]
    assert cropped.shape == squashed.shape == (3, 64, 64)
    assert cropped[0].max() < 0.05 and cropped[2].min() > 0.95  # centre square is all blue
    assert squashed[0, :, :16].mean() > 0.9  # the red third survives, normalised to [-1, 1]
    assert not crop.has_text_tower and crop.tokenizer is None
    with pytest.raises(CompressError, match="no text tower"):
        crop.encode_texts(["red"], "en")


def test_save_and_from_pretrained_give_identical_outputs(tiny_student, tmp_path):
    folder = tmp_path / "student"
    tiny_student.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "student.json", "tokenizer.model"]
    loaded = compress.build_student(folder)
    assert isinstance(loaded, BilingualStudent)
    texts = ["A red circle.", "一个红色的圆形在上面。", "😀"]
    assert torch.equal(loaded.encode_images(images()), tiny_student.encode_images(images()))
    assert torch.equal(loaded.encode_texts(texts, "zh"), tiny_student.encode_texts(texts, "zh"))
    assert torch.equal(loaded.tokenize(texts), tiny_student.tokenize(texts))
    # the loaded config alone rebuilds the same architecture
    rebuilt = build_bilingual_student(loaded.config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in loaded.state_dict().items()}
    clone = copy.deepcopy(loaded)  # the tokenizer's native processor must not block copying
    assert torch.equal(clone.encode_texts(texts, "en"), loaded.encode_texts(texts, "en"))
    manifest = json.loads((folder / "student.json").read_text())
    assert manifest["image"]["resize"] == "shorter_side_center_crop" and manifest["text"]["pad_id"] == 0


def test_from_pretrained_names_the_bad_file(tiny_student, tmp_path):
    with pytest.raises(CompressError, match="no such student folder"):
        BilingualStudent.from_pretrained(tmp_path / "absent")
    folder = tmp_path / "student"
    folder.mkdir()
    with pytest.raises(CompressError, match="student.json: missing student config"):
        BilingualStudent.from_pretrained(folder)
    tiny_student.save_pretrained(folder)
    config_text = (folder / "student.json").read_text()

    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CompressError, match="model.safetensors: unreadable safetensors"):
        BilingualStudent.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CompressError, match="model.safetensors: missing student weights"):
        BilingualStudent.from_pretrained(folder)

    wrong = json.loads(config_text)
    wrong["config"]["text"]["layers"] = 2
    (folder / "student.json").write_text(json.dumps(wrong))
    tiny_student.save_pretrained(tmp_path / "good")
    (folder / "model.safetensors").write_bytes((tmp_path / "good" / "model.safetensors").read_bytes())
    with pytest.raises(CompressError, match="model.safetensors: weights do not fit"):
        BilingualStudent.from_pretrained(folder)

    (folder / "student.json").write_text("{not json")
    with pytest.raises(CompressError, match="student.json: not valid JSON"):
        BilingualStudent.from_pretrained(folder)
    (folder / "student.json").write_text(config_text)
    (folder / "tokenizer.model").unlink()
    with pytest.raises(CompressError, match="tokenizer.model: no such tokenizer file"):
        BilingualStudent.from_pretrained(folder)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"image": {"image_size": 100}}, "multiple of 32"),
        ({"image": {"image_size": 32}}, "at least 64"),
        ({"image": {"model": "resnet50"}}, "unknown MobileViT model"),
        ({"image": {"resize": "stretch"}}, "resize rule"),
        ({"image": {"mean": 0.5}}, "list of 3 numbers"),
        ({"image": {"std": [1.0, 0.0, 1.0]}}, "std values must be positive"),
        ({"image": {"width": 0}}, r"width must be a number in \(0, 4\]"),
        ({"image": {"stage_strides": [2, 2, 2, 2, 2]}}, "product is 16"),
        ({"image": {"stage_strides": [1, 2, 2, 2]}}, "list of 5 strides"),
        ({"image": {"act": "tanh"}}, "act must be one of silu, relu"),
        ({"text": {"hidden": 30, "heads": 4}}, "not divisible"),
        ({"text": {"pooling": "max"}}, "pooling"),
        ({"text": {"vocab_size": 123}}, "does not match the tokenizer"),
        ({"text": {"layer": 2}}, "unknown text option 'layer'"),
        ({"embed_size": 2}, "unknown student config key"),
        ({"image": None, "text": None}, "needs an image tower, a text tower, or both"),
    ],
)
def test_bad_configs_are_refused(tokenizer_path, bad, match):
    with pytest.raises(CompressError, match=match):
        build_bilingual_student({"text": TINY_TEXT, "tokenizer": str(tokenizer_path), **bad})


def test_image_tower_checks_its_input_shape():
    tower = MobileViTImageTower("mobilevit_xxs", 96, 16)
    assert tower(torch.rand(2, 3, 96, 96)).shape == (2, 16)
    with pytest.raises(CompressError, match=r"\[N, 3, 96, 96\]"):
        tower(torch.rand(1, 3, 64, 64))


def _stage_sides(backbone: torch.nn.Module, side: int) -> list[int]:
    sides = []
    hooks = [stage.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1])) for stage in backbone.stages]
    with torch.no_grad():
        backbone(torch.rand(1, 3, side, side))
    for hook in hooks:
        hook.remove()
    return sides


@pytest.mark.parametrize("model", ["mobilevit_xxs", "mobilevitv2_050"])
def test_image_layout_options_reshape_the_timm_model(model):
    plain = MobileViTImageTower(model, 64, 16)
    changed = MobileViTImageTower(model, 64, 16, width=0.75, stage_strides=[2, 2, 2, 2, 1], act="relu")
    # the same total stride, reached earlier: the first stage works at a quarter of the pixels
    assert _stage_sides(plain.backbone, 64) == [32, 16, 8, 4, 2]
    assert _stage_sides(changed.backbone, 64) == [16, 8, 4, 2, 2]
    assert changed.backbone.num_features == round(0.75 * plain.backbone.num_features)
    assert sum(p.numel() for p in changed.parameters()) < sum(p.numel() for p in plain.parameters())
    activations = {type(m).__name__ for m in changed.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.SiLU))}
    assert activations == {"ReLU"}
    assert changed(torch.rand(2, 3, 64, 64)).shape == (2, 16)


def test_a_changed_layout_round_trips_through_save_pretrained(tokenizer_path, tmp_path):
    layout = {"model": "mobilevit_xxs", "image_size": 64, "width": 0.5, "stage_strides": [2, 2, 2, 2, 1], "act": "relu"}
    student = build_bilingual_student({"image": layout, "text": TINY_TEXT, "tokenizer": str(tokenizer_path)})
    student.save_pretrained(tmp_path / "student")
    loaded = BilingualStudent.from_pretrained(tmp_path / "student")
    assert {k: loaded.config["image"][k] for k in layout} == layout
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(student.image_tower(pixels), loaded.image_tower(pixels))


def test_text_tower_ignores_padding():
    torch.manual_seed(0)
    for pooling, norm in [("mean", "pre"), ("cls", "post")]:
        tower = TextEncoder(100, 8, layers=2, hidden=16, heads=2, ffn=32, max_length=12, pooling=pooling, norm=norm).eval()
        ids = torch.tensor([[2, 17, 45, 9, 3, 0, 0, 0, 0, 0, 0, 0]])
        with torch.no_grad():
            assert torch.allclose(tower(ids), tower(ids[:, :5]), atol=1e-5)
            assert not torch.allclose(tower(ids), tower(ids.roll(1, dims=1)), atol=1e-3)
    with pytest.raises(CompressError, match="at most 12 tokens"):
        tower(torch.ones(1, 13, dtype=torch.long))


@pytest.mark.parametrize("suffix", ["safetensors", "pth"])
def test_image_tower_loads_a_local_timm_checkpoint(tmp_path, suffix):
    torch.manual_seed(1)
    source = timm.create_model("mobilevitv2_050", pretrained=False, num_classes=7)  # a classifier checkpoint
    path = tmp_path / f"mobilevitv2_050.{suffix}"
    if suffix == "safetensors":
        save_file(source.state_dict(), str(path))
    else:
        torch.save({"state_dict": source.state_dict()}, path)
    tower = MobileViTImageTower("mobilevitv2_050", 64, 16, checkpoint=path)
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("head.fc.")}
    assert all(torch.equal(tower.backbone.state_dict()[k], v) for k, v in expected.items())
    with pytest.raises(CompressError, match=f"mobilevitv2_050.{suffix}: not a mobilevit_xxs checkpoint"):
        MobileViTImageTower("mobilevit_xxs", 64, 16, checkpoint=path)
    with pytest.raises(CompressError, match="no such image checkpoint"):
        MobileViTImageTower("mobilevitv2_050", 64, 16, checkpoint=tmp_path / "absent.safetensors")


def lower_and_run(module: torch.nn.Module, example: torch.Tensor, path) -> torch.Tensor:
    """torch.export -> ExecuTorch XNNPACK .pte -> run with the ExecuTorch runtime."""
    program = to_edge_transform_and_lower(torch.export.export(module, (example,)), partitioner=[XnnpackPartitioner()])
    path.write_bytes(program.to_executorch().buffer)
    return Runtime.get().load_program(str(path)).load_method("forward").execute([example])[0]


@pytest.mark.parametrize("tower", ["image", "text"])
def test_towers_run_in_executorch_like_eager(tiny_student, tmp_path, tower):
    if tower == "image":
        module, example = tiny_student.image_tower.eval(), tiny_student.preprocess_images(images()[:1])
    else:
        module = tiny_student.text_tower.eval()
        example = tiny_student.tokenize(["一个红色的圆形在上面。", "A small blue square."])  # padded rows
        assert (example == 0).any()
    with torch.no_grad():
        eager = module(example)
    ported = lower_and_run(module, example, tmp_path / f"{tower}.pte")
    assert ported.shape == eager.shape
    assert (ported - eager).abs().max().item() <= 1e-4
