"""The dc_clip recipe's paper preset end to end, on a tiny random-weight AltCLIP and a few tar shards.

The run goes through the command line with the preset's own structure (search stage, AltCLIP teacher
from a local folder, tar shards, teacher cache with augmented views, both stages by epochs, ELEVATER
evaluation, the bundle); the `--set` overrides shrink only sizes and move it to the CPU in fp32.
What is checked is shapes, files and records, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from data_fixtures import caption_json, noise_jpeg, write_shard
from PIL import Image
from tiny_models import CAPTIONS, TINY_EMBED_DIM, save_tiny_altclip

from compress.cli import main
from compress.errors import CompressError

SHARDS, PAIRS_PER_SHARD = 3, 6
CLASSES = {"en": ["cat", "dog"], "zh": ["猫", "狗"]}

# Sizes only: steps and batches, counts, the vocabulary, towers and pictures, CPU and fp32.
SHRINK = [
    "teacher.device=cpu",
    "teacher.dtype=float32",
    "teacher.batch_size=8",
    "tokenizer.vocab_size=500",  # the proxy's demo captions need this many pieces
    "search.image_space.grid.model=[mobilevitv2_050]",
    "search.image_space.grid.image_size=[64]",
    "search.text_space.fixed.max_length=16",
    "search.text_space.candidates=[{layers: 1, hidden: 32, heads: 2, ffn: 64}]",
    "search.proxy={steps: 2, batch_size: 8, train_samples: 16, val_samples: 8, zero_shot_count: 4, lr: 2.0e-3, image_size: 64}",
    "search.warmup=0",
    "search.repeats=1",
    "distill.batch_size={distill: 8, align: 8}",
    "distill.warmup_steps=1",
    "distill.checkpoint_every=4",
    "distill.device=cpu",
    "distill.precision=fp32",
    "distill.num_workers=0",
    "cache.views=2",
    "cache.num_workers=0",
    "cache.batch_size=8",
    "cache.shard_size=16",
    "export.targets=[executorch]",
    "export.quantize=none",
    "export.labels=[cifar-10]",
    "export.calibration_count=4",
    "export.parity_count=4",
    "export.zero_shot_count=4",
]


def write_pair_shards(folder: Path) -> str:
    folder.mkdir(parents=True)
    for shard in range(SHARDS):
        members = []
        for i in range(PAIRS_PER_SHARD):
            index = shard * PAIRS_PER_SHARD + i
            caption = CAPTIONS[index % len(CAPTIONS)]
            lang = "en" if caption.isascii() else "zh"
            members += [(f"{index:04d}.jpg", noise_jpeg(40, seed=index)), (f"{index:04d}.json", caption_json(caption, lang))]
        write_shard(folder / f"{shard:03d}.tar", members)
    return str(folder / ("{000.." + f"{SHARDS - 1:03d}" + "}.tar"))


def write_elevater_folder(folder: Path) -> Path:
    """An ELEVATER-layout dataset as Chinese-CLIP ships it: label.txt, label_cn.txt, test/<class id>/*."""
    (folder / "test").mkdir(parents=True)
    (folder / "label.txt").write_text("\n".join(CLASSES["en"]) + "\n", encoding="utf-8")
    (folder / "label_cn.txt").write_text("\n".join(CLASSES["zh"]) + "\n", encoding="utf-8")
    for label, colour in enumerate([(200, 40, 40), (40, 40, 200)]):
        class_dir = folder / "test" / f"{label:03d}"
        class_dir.mkdir()
        for i in range(3):
            Image.new("RGB", (48 + 8 * i, 40), colour).save(class_dir / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    return {
        "root": root,
        "teacher": save_tiny_altclip(root / "altclip"),
        "data": write_pair_shards(root / "shards"),
        "elevater": write_elevater_folder(root / "elevater" / "tiny-pets"),
        "runs": root / "runs",
    }


@pytest.fixture(scope="module")
def isolated(world):
    """The compress cache (latency, proxy, demo teacher) in the test's folder; no hub access."""
    patch = pytest.MonkeyPatch()
    patch.setenv("COMPRESS_CACHE_DIR", str(world["root"] / "cache"))
    patch.setenv("HF_HUB_OFFLINE", "1")
    yield
    patch.undo()


def paper_args(world, *extra) -> list[str]:
    args = ["recipe", "dc_clip", "--preset", "paper", "--teacher", f"altclip:{world['teacher']}", "--data", world["data"]]
    args += ["--runs-dir", str(world["runs"])]
    for override in [*SHRINK, f"eval.datasets=[{world['elevater']}]"]:
        args += ["--set", override]
    return args + list(extra)


@pytest.fixture(scope="module")
def paper_run(world, isolated):
    assert main(paper_args(world)) == 0
    return world["runs"] / "dc_clip_paper"


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_stage_of_the_paper_preset_finishes(paper_run):
    stages = read_json(paper_run / "stages.json")["stages"]
    expected = ["search", "tokenizer", "cache", "distill", "align", "eval", "export", "bundle_eval"]
    assert list(stages) == expected
    assert all(record["status"] == "finished" and record["runs"] == 1 for record in stages.values())
    recipe = read_json(paper_run / "recipe.json")
    assert recipe["preset"] == "paper"
    # --teacher altclip:FOLDER changed the location only; the preset's other teacher options stayed.
    assert recipe["teacher"]["name"] == "altclip" and recipe["teacher"]["location"].endswith("altclip")
    assert recipe["distill"]["stage2_losses"] == {"infonce": 1.0} and recipe["cache"]["augmentation"] == "crop-flip"


def test_the_searched_student_is_the_one_trained(paper_run):
    stages = read_json(paper_run / "stages.json")["stages"]
    search = stages["search"]["outputs"]
    assert (search["image"], search["text"]) == ("mobilevitv2_050@64", "L1-H32-A2-F64-T16-V500")
    chosen = yaml.safe_load((paper_run / "search" / "chosen_student.yaml").read_text(encoding="utf-8"))
    # The towers embed into the teacher's space and the text vocabulary is the tokenizer's.
    assert chosen["embed_dim"] == TINY_EMBED_DIM and chosen["tokenizer_vocab_size"] == 500
    student = read_json(paper_run / "student" / "student.json")["config"]
    assert student["image"]["model"] == "mobilevitv2_050" and student["image"]["image_size"] == 64
    assert student["text"]["layers"] == 1 and student["text"]["hidden"] == 32 and student["embed_dim"] == TINY_EMBED_DIM
    assert (paper_run / "search" / "search.json").is_file() and (paper_run / "search" / "search.png").is_file()


def test_the_stages_train_by_epochs_over_the_cached_views(paper_run):
    stages = read_json(paper_run / "stages.json")["stages"]
    views = 2 * SHARDS * PAIRS_PER_SHARD  # every pair under each of its 2 cached views
    assert stages["cache"]["outputs"]["samples_embedded"] == SHARDS * PAIRS_PER_SHARD
    batches = -(-views // 8)
    assert stages["distill"]["outputs"]["steps"] == 2 * batches  # two epochs
    assert stages["align"]["outputs"]["steps"] == batches  # one epoch
    report = read_json(paper_run / "report.json")
    assert report["preset"] == "paper" and report["search"]["image"] == "mobilevitv2_050@64"
    assert report["precision"] == "fp32" and report["device"] == "cpu"


def test_eval_covers_the_elevater_folder_in_both_languages(paper_run):
    report = read_json(paper_run / "report.json")
    scores = report["zero_shot_top1"]
    for model in ("teacher", "student"):
        assert set(scores[model]) == {"tiny-pets"}
        assert set(scores[model]["tiny-pets"]) == {"en", "zh"}
        assert all(0.0 <= v <= 1.0 for v in scores[model]["tiny-pets"].values())
    assert set(report["bundle_zero_shot_top1"]["tiny-pets"]) == {"en", "zh"}


def test_the_bundle_manifest_has_the_searched_shapes(paper_run):
    from compress.bundle import MANIFEST, BundleEncoder

    bundle = paper_run / "bundle"
    manifest = read_json(bundle / MANIFEST)
    assert manifest["embed_dim"] == TINY_EMBED_DIM and manifest["image"]["size"] == 64
    assert manifest["text"]["max_length"] == 16
    shapes = {(m["tower"], m["precision"]): (m["input"]["shape"], m["output"]["shape"]) for m in manifest["models"]}
    assert shapes == {("image", "fp32"): ([1, 3, 64, 64], [1, TINY_EMBED_DIM]), ("text", "fp32"): ([1, 16], [1, TINY_EMBED_DIM])}
    listed = {entry["path"] for entry in manifest["files"]}
    assert {
        "image_encoder.pte",
        "text_encoder.pte",
        "tokenizer.model",
        "labels/cifar-10.en.json",
        "labels/cifar-10.zh.json",
    } <= listed
    labels = read_json(bundle / "labels" / "cifar-10.zh.json")
    assert len(labels["embeddings"]) == 10 and len(labels["embeddings"][0]) == TINY_EMBED_DIM
    encoder = BundleEncoder(bundle, precision="fp32")
    assert tuple(encoder.encode_texts(["一只猫", "两只猫"], "zh").shape) == (2, TINY_EMBED_DIM)
    # No validation data in the preset: parity ran on training pairs that calibration does not use.
    export = read_json(paper_run / "stages.json")["stages"]["export"]["outputs"]["bundle"]
    assert export["passed"] and export["parity_data"] == "training pairs that calibration does not use"


def test_resume_refuses_another_preset_and_skips_a_finished_run(world, paper_run, capsys):
    before = read_json(paper_run / "stages.json")["stages"]
    assert main(paper_args(world, "--resume")) == 0
    assert read_json(paper_run / "stages.json")["stages"] == before  # nothing ran again
    args = ["recipe", "dc_clip", "--preset", "demo", "--name", "dc_clip_paper", "--runs-dir", str(world["runs"]), "--resume"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "started with the paper preset (--preset paper)" in err and "now continued with the demo preset" in err


def test_an_unknown_preset_lists_the_known_ones(capsys):
    assert main(["recipe", "dc_clip", "--preset", "huge"]) == 2
    assert "unknown preset 'huge' for recipe dc_clip; presets: demo, paper" in capsys.readouterr().err


def test_config_and_preset_together_are_refused(tmp_path, capsys):
    assert main(["recipe", "dc_clip", "--preset", "paper", "--config", str(tmp_path / "mine.yaml")]) == 2
    assert "a config file replaces the presets whole" in capsys.readouterr().err


def test_the_paper_preset_without_data_says_how_to_give_it(capsys):
    assert main(["recipe", "dc_clip", "--preset", "paper"]) == 2
    assert "data is not set; give the training pairs with --data" in capsys.readouterr().err


def test_a_missing_elevater_folder_is_refused_before_training(world, isolated, tmp_path, capsys):
    args = paper_args(world, "--runs-dir", str(tmp_path), "--set", f"eval.datasets=[{tmp_path / 'nowhere'}]")
    assert main(args) == 2
    assert f"eval.datasets: {tmp_path / 'nowhere'}: no such dataset folder" in capsys.readouterr().err
    assert not (tmp_path / "dc_clip_paper").exists()


def test_a_teacher_location_keeps_the_presets_teacher_options():
    from compress.commands.recipe import replace_teacher

    preset = {"name": "altclip", "location": "BAAI/AltCLIP", "device": "cuda", "dtype": "bfloat16"}
    assert replace_teacher(preset, "altclip:/models/AltCLIP") == {**preset, "location": "/models/AltCLIP"}
    assert replace_teacher(preset, "chinese-clip:/models/cc") == "chinese-clip:/models/cc"
    assert replace_teacher(preset, {"name": "altclip", "device": "cpu"}) == {"name": "altclip", "device": "cpu"}
    assert replace_teacher("demo", "altclip:/x") == "altclip:/x"


def test_the_paper_preset_is_read_strictly():
    from compress.recipes import load_config
    from compress.recipes.dc_clip import SEARCH, read_config

    config = load_config("dc_clip", preset="paper")
    config["data"] = "shards/{000..099}.tar"
    config = read_config(config)
    assert set(config["search"]) == set(SEARCH.keys)
    assert config["tokenizer"]["vocab_size"] == 8000 and config["distill"]["precision"] == "bf16"
    assert config["eval"]["demo_tasks"] == [] and len(config["eval"]["datasets"]) == 20
    config["search"]["budgets"]["latency_ms"] = 5
    with pytest.raises(CompressError, match=r"search: budgets: unknown key\(s\) latency_ms"):
        read_config(config)


def test_a_torchrun_job_leaves_the_search_to_one_process(world, isolated, tmp_path, monkeypatch, capsys):
    import compress.recipes.dc_clip as dc_clip
    from compress.distill.distributed import World

    monkeypatch.setattr(dc_clip, "join_from_env", lambda device: (World(rank=0, size=2), False))
    assert main(paper_args(world, "--runs-dir", str(tmp_path))) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the search stage runs in one process" in err and "--stages search" in err
    assert not (tmp_path / "dc_clip_paper" / "search").exists()


def test_the_paper_tokenizer_trains_on_more_distinct_characters_than_its_vocabulary(tmp_path):
    """A large Chinese corpus holds more distinct characters than the vocabulary has pieces: at the
    preset's character coverage the rarest go to byte fallback instead of failing the stage."""
    from compress.recipes import load_config
    from students.tokenizer import UNK_ID, train_tokenizer

    common = [chr(0x4E00 + i) for i in range(100)]
    rare = [chr(0x6000 + i) for i in range(40)]  # each seen once: 40 of the 100,040 characters of the text
    captions = ["".join(common[(i + j) % 100] for j in range(20)) for i in range(5000)] + rare
    coverage = load_config("dc_clip", preset="paper")["tokenizer"]["character_coverage"]
    # Every character, the 256 byte pieces and 4 special ones make 400 pieces a vocabulary of 380 cannot hold.
    with pytest.raises(CompressError, match="Vocabulary size is smaller than required_chars"):
        train_tokenizer(captions, tmp_path / "full", vocab_size=380)
    tokenizer = train_tokenizer(captions, tmp_path / "paper", vocab_size=380, character_coverage=coverage)
    assert tokenizer.vocab_size <= 380
    pieces = tokenizer.pieces(rare[0])
    assert pieces and UNK_ID not in pieces and tokenizer.decode(pieces) == rare[0]
    with pytest.raises(CompressError, match="character_coverage must be in"):
        train_tokenizer(captions, tmp_path / "bad", vocab_size=400, character_coverage=0.0)
