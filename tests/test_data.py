"""The data pipeline: image conversion, manifests, tar shards, the bad-input policy, loading, sampling."""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageFile
from torch.utils.data import DataLoader

from compress.data import (
    REASONS,
    EpochSampler,
    MixedDataset,
    Sample,
    SampleBatch,
    SkipStats,
    collate_samples,
    epoch_order,
    load_image,
    open_dataset,
)
from compress.data.shards import expand_braces
from compress.errors import BadSampleError, CompressError

sys.path.insert(0, str(Path(__file__).parent))
from data_fixtures import (  # noqa: E402
    BAD_IMAGES,
    GOOD_IMAGES,
    assert_pixels,
    caption_json,
    encode,
    noise_jpeg,
    noise_png,
    noise_webp,
    rgba_png,
    sixteen_bit_png,
    write_manifest,
    write_shard,
)

# ---------------------------------------------------------------- images


@pytest.mark.parametrize("name", sorted(GOOD_IMAGES))
def test_every_image_mode_becomes_the_expected_rgb(name, tmp_path):
    builder, suffix = GOOD_IMAGES[name][:2]
    assert_pixels(load_image(builder(), name), name)
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(builder())
    assert_pixels(load_image(path), name)


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_every_bad_image_is_rejected_with_its_reason(name, tmp_path):
    builder, suffix, reason = BAD_IMAGES[name]
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(builder())
    with pytest.raises(BadSampleError) as caught:
        load_image(path)
    assert caught.value.reason == reason
    assert str(path) in str(caught.value) and reason in str(caught.value)


def test_missing_and_empty_files_are_rejected(tmp_path):
    with pytest.raises(BadSampleError, match="missing_file") as caught:
        load_image(tmp_path / "gone.jpg")
    assert "gone.jpg" in str(caught.value)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadSampleError, match="empty_file"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(BadSampleError, match="empty_file"):
        load_image(b"", "member.jpg")


def test_truncated_images_are_not_loaded_leniently():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------- manifests

GOOD_LANGS = {name: ("en" if i % 2 == 0 else "zh") for i, name in enumerate(sorted(GOOD_IMAGES))}
MANIFEST_OPEN_SKIPS = Counter(missing_file=1, empty_file=1, empty_caption=2, unknown_language=1, bad_manifest_line=4)
MANIFEST_ACCESS_SKIPS = Counter(reason for _, _, reason in BAD_IMAGES.values())


def build_manifest_folder(root: Path) -> Path:
    """A manifest with every image mode, every bad image, and every bad line; images in a subfolder."""
    images = root / "images"
    images.mkdir(parents=True)
    records: list = []
    for name in sorted(GOOD_IMAGES):
        builder, suffix = GOOD_IMAGES[name][:2]
        (images / f"{name}{suffix}").write_bytes(builder())
        records.append({"image": f"images/{name}{suffix}", "caption": f"  picture {name} ", "lang": GOOD_LANGS[name]})
    for name in sorted(BAD_IMAGES):
        builder, suffix, _ = BAD_IMAGES[name]
        (images / f"{name}{suffix}").write_bytes(builder())
        records.append({"image": f"images/{name}{suffix}", "caption": f"bad {name}", "lang": "en"})
    (images / "empty.jpg").write_bytes(b"")
    absolute = (images / "rgb.png").resolve()
    records += [
        {"image": str(absolute), "caption": "an absolute path", "lang": " ZH "},  # language case and spaces ignored
        "",  # blank lines are not records
        {"image": "images/missing.jpg", "caption": "no such file", "lang": "en"},
        {"image": "images/empty.jpg", "caption": "zero bytes", "lang": "en"},
        {"image": "images/rgb.png", "caption": "", "lang": "en"},
        {"image": "images/rgb.png", "caption": " \t ", "lang": "zh"},
        {"image": "images/rgb.png", "caption": "une image", "lang": "fr"},
        '{"image": "images/rgb.png", "caption": ',  # malformed JSON
        {"image": "images/rgb.png", "lang": "en"},  # no caption key
        '["images/rgb.png", "a list", "en"]',  # not an object
        {"image": "images/rgb.png", "caption": 42, "lang": "en"},  # caption not a string
    ]
    return write_manifest(root / "captions.jsonl", records)


def line_of(manifest: Path, text: str) -> int:
    lines = manifest.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def test_manifest_counts_every_bad_case_and_converts_every_mode(tmp_path):
    manifest = build_manifest_folder(tmp_path / "data")
    ds = open_dataset(manifest)
    assert len(ds) == len(GOOD_IMAGES) + len(BAD_IMAGES) + 1
    assert ds.skipped == MANIFEST_OPEN_SKIPS  # the cheap checks ran at open time, nothing decoded yet
    samples = [ds[i] for i in range(len(ds))]
    assert sum(sample is None for sample in samples) == len(BAD_IMAGES)
    assert ds.skipped == MANIFEST_OPEN_SKIPS + MANIFEST_ACCESS_SKIPS
    by_caption = {sample.caption: sample for sample in samples if sample is not None}
    for name in GOOD_IMAGES:
        sample = by_caption[f"picture {name}"]  # captions are stripped
        assert isinstance(sample, Sample) and sample.lang == GOOD_LANGS[name]
        assert_pixels(sample.image, name)
    assert by_caption["an absolute path"].lang == "zh"
    assert by_caption["an absolute path"].image.getpixel((0, 0)) == (10, 20, 30)
    # a second pass neither decodes nor counts the bad images again
    assert [ds[i] is None for i in range(len(ds))] == [sample is None for sample in samples]
    assert ds.skipped == MANIFEST_OPEN_SKIPS + MANIFEST_ACCESS_SKIPS
    log = dict(ds.skip_log)
    assert log[f"captions.jsonl:{line_of(manifest, 'missing.jpg')}"] == "missing_file"
    assert log[f"captions.jsonl:{line_of(manifest, 'une image')}"] == "unknown_language"
    assert log[f"captions.jsonl:{line_of(manifest, 'truncated_webp')}"] == "truncated_image"
    assert set(ds.skipped) <= set(REASONS)


def test_manifest_relative_paths_resolve_against_the_manifest_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(encode(Image.new("RGB", (2, 2), (0, 200, 0)), "PNG"))
    write_manifest(data / "m.jsonl", [{"image": "images/a.png", "caption": "green", "lang": "en"}])
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "images").mkdir(parents=True)  # a decoy with the same relative path
    (elsewhere / "images" / "a.png").write_bytes(encode(Image.new("RGB", (2, 2), (200, 0, 0)), "PNG"))
    monkeypatch.chdir(elsewhere)
    ds = open_dataset("../data/m.jsonl")
    monkeypatch.chdir(tmp_path)  # a later change of working folder does not matter either
    assert ds[0].image.getpixel((0, 0)) == (0, 200, 0)
    assert ds[0].key == "m.jsonl:1"


def test_manifest_default_language_option(tmp_path):
    (tmp_path / "a.png").write_bytes(rgba_png())
    records = [{"image": "a.png", "caption": "无语言"}, {"image": "a.png", "caption": "en", "lang": "en"}]
    manifest = write_manifest(tmp_path / "m.jsonl", records)
    assert open_dataset(manifest).skipped == Counter(bad_manifest_line=1)
    ds = open_dataset(manifest, lang="zh")
    assert ds.captions() == [("无语言", "zh"), ("en", "en")]
    with pytest.raises(CompressError, match="lang='fr'"):
        open_dataset(manifest, lang="fr")


def one_line(image: str, caption="c", lang="en") -> list:
    return [{"image": image, "caption": caption, "lang": lang}]


MANIFEST_RAISE_CASES = {
    # case: (records, image files to write {name: bytes}, reason, text the message must name, raised at open)
    "missing_file": (one_line("gone.jpg"), {}, "missing_file", "gone.jpg", True),
    "empty_file": (one_line("zero.jpg"), {"zero.jpg": b""}, "empty_file", "zero.jpg", True),
    "empty_caption": (one_line("ok.png", caption="   "), {"ok.png": noise_png()}, "empty_caption", "ok.png", True),
    "unknown_language": (one_line("ok.png", lang="de"), {"ok.png": noise_png()}, "unknown_language", "ok.png", True),
    "bad_manifest_line": (["{not json"], {}, "bad_manifest_line", "m.jsonl:1", True),
    "missing_key": ([{"caption": "c", "lang": "en"}], {}, "bad_manifest_line", "m.jsonl:1", True),
    **{
        name: (one_line(f"img{suffix}"), {f"img{suffix}": builder()}, reason, f"img{suffix}", False)
        for name, (builder, suffix, reason) in BAD_IMAGES.items()
    },
}


@pytest.mark.parametrize("case", sorted(MANIFEST_RAISE_CASES))
def test_manifest_on_bad_raise_names_the_file_and_the_reason(case, tmp_path):
    records, files, reason, named, at_open = MANIFEST_RAISE_CASES[case]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    manifest = write_manifest(tmp_path / "m.jsonl", records)
    with pytest.raises(BadSampleError) as caught:
        ds = open_dataset(manifest, on_bad="raise")
        assert not at_open, "should have been refused when opened"
        ds[0]
    assert caught.value.reason == reason
    assert reason in str(caught.value) and named in str(caught.value)
    skipping = open_dataset(manifest)  # the same input under the default policy is counted instead
    [skipping[i] for i in range(len(skipping))]
    assert skipping.skipped == Counter({reason: 1})


def test_captions_do_not_decode_images(tmp_path, monkeypatch):
    manifest = build_manifest_folder(tmp_path)
    ds = open_dataset(manifest)

    def refuse(*args, **kwargs):
        raise AssertionError("captions() decoded an image")

    monkeypatch.setattr("compress.data.indexed.load_image", refuse)
    captions = ds.captions()
    assert len(captions) == len(ds)
    assert ("picture rgb", GOOD_LANGS["rgb"]) in captions and ("an absolute path", "zh") in captions
    assert ds.skipped == MANIFEST_OPEN_SKIPS


def test_manifest_digest_is_stable_and_follows_edits(tmp_path):
    manifest = build_manifest_folder(tmp_path / "data")
    digest = open_dataset(manifest).digest()
    assert len(digest) == 64 and digest == open_dataset(manifest).digest()
    shutil.copytree(tmp_path / "data", tmp_path / "moved")  # relative paths are hashed as written
    assert open_dataset(tmp_path / "moved" / "captions.jsonl").digest() == digest
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("picture gray", "picture grey"), encoding="utf-8")
    edited_digest = open_dataset(manifest).digest()
    assert edited_digest != digest
    (tmp_path / "data" / "images" / "gray.png").write_bytes(encode(Image.new("L", (5, 5), 100), "PNG"))
    assert open_dataset(manifest).digest() != edited_digest


# ---------------------------------------------------------------- shards

GOOD_SHARD = [  # 000.tar: four samples, one per caption convention
    ("a.jpg", noise_jpeg(seed=1)),
    ("a.json", caption_json("a noisy photo", "en")),
    ("b.png", noise_png(seed=2)),
    ("b.txt", "一张噪声图片".encode()),
    ("b.lang", b"zh\n"),
    ("c.webp", noise_webp(seed=3)),
    ("c.json", caption_json("webp 图片", "zh")),
    ("c.cls", b"7"),
    ("sub/d.png", rgba_png()),
    ("sub/d.json", caption_json("transparent pixels", "en")),
]
BAD_SHARD = [  # 001.tar: every bad case a shard can have
    ("nocap.jpg", noise_jpeg(seed=4)),
    ("noimage.json", caption_json("a caption without a picture")),
    ("vector.svg", BAD_IMAGES["svg"][0]()),
    ("vector.json", caption_json("a drawing")),
    ("blank.png", noise_png(seed=5)),
    ("blank.json", caption_json("   ")),
    ("french.png", noise_png(seed=6)),
    ("french.json", caption_json("une image", "fr")),
    ("nolang.png", noise_png(seed=7)),
    ("nolang.txt", b"a caption with no language"),
    ("badjson.png", noise_png(seed=8)),
    ("badjson.json", b"{caption: oops"),
    ("zero.jpg", b""),
    ("zero.json", caption_json("zero bytes")),
    ("broken.png", BAD_IMAGES["broken_png"][0]()),
    ("broken.json", caption_json("broken data")),
    ("cut.jpg", BAD_IMAGES["truncated_jpeg"][0]()),
    ("cut.json", caption_json("cut short")),
    ("text.jpg", BAD_IMAGES["text_as_jpeg"][0]()),
    ("text.json", caption_json("text, not an image")),
]
MORE_SHARD = [  # 002.tar
    ("e.png", sixteen_bit_png()),
    ("e.json", caption_json("sixteen bits", "zh")),
]
SHARD_OPEN_SKIPS = Counter(
    missing_caption=1, missing_file=1, unsupported_format=1, empty_caption=1, unknown_language=2, bad_metadata=1, empty_file=1
)
SHARD_ACCESS_SKIPS = Counter(corrupt_image=1, truncated_image=1, unsupported_format=1)
SHARD_SAMPLES = 4 + 3 + 1  # 000.tar, the three in 001.tar that fail only when decoded, 002.tar


def build_shards(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_shard(root / "000.tar", GOOD_SHARD)
    write_shard(root / "001.tar", BAD_SHARD)
    write_shard(root / "002.tar", MORE_SHARD)
    return root


def test_shards_count_every_bad_case(tmp_path):
    shards = build_shards(tmp_path / "shards")
    ds = open_dataset(str(shards / "{000..002}.tar"))
    assert len(ds) == SHARD_SAMPLES
    assert ds.skipped == SHARD_OPEN_SKIPS
    samples = [ds[i] for i in range(len(ds))]
    assert ds.skipped == SHARD_OPEN_SKIPS + SHARD_ACCESS_SKIPS
    kept = {sample.key: sample for sample in samples if sample is not None}
    assert sorted(kept) == ["000.tar/a", "000.tar/b", "000.tar/c", "000.tar/sub/d", "002.tar/e"]
    assert (kept["000.tar/b"].caption, kept["000.tar/b"].lang) == ("一张噪声图片", "zh")
    assert (kept["000.tar/c"].caption, kept["000.tar/c"].lang) == ("webp 图片", "zh")
    assert kept["000.tar/sub/d"].image.getpixel((0, 0)) == (255, 255, 255)
    assert kept["002.tar/e"].image.getpixel((1, 0)) == (255, 255, 255)
    log = dict(ds.skip_log)
    assert log["001.tar/nocap"] == "missing_caption" and log["001.tar/noimage"] == "missing_file"
    assert log["001.tar/badjson"] == "bad_metadata" and log["001.tar/cut"] == "truncated_image"


def test_shard_default_language_option_and_lang_member(tmp_path):
    shards = build_shards(tmp_path / "shards")
    ds = open_dataset(shards / "001.tar", lang="en")
    assert ds.skipped["unknown_language"] == 1  # only "fr" is left; nolang takes the option
    assert ("a caption with no language", "en") in ds.captions()
    ds = open_dataset(shards / "000.tar", lang="en")
    assert ("一张噪声图片", "zh") in ds.captions()  # b.lang wins over the option


def test_shards_give_random_access(tmp_path):
    shards = build_shards(tmp_path / "shards")
    ds = open_dataset(str(shards / "*.tar"))
    forward = [None if s is None else (s.key, s.image.tobytes()) for s in (ds[i] for i in range(len(ds)))]
    fresh = open_dataset(str(shards / "*.tar"))
    backward = [None if s is None else (s.key, s.image.tobytes()) for s in (fresh[i] for i in reversed(range(len(fresh))))]
    assert backward[::-1] == forward
    assert ds[-1].key == "002.tar/e"


def test_every_shard_spec_form_gives_the_same_dataset(tmp_path, monkeypatch):
    shards = build_shards(tmp_path / "shards")
    reference = open_dataset(shards)  # the folder
    monkeypatch.chdir(tmp_path)
    forms = [
        "shards",
        "shards/{000..002}.tar",
        "shards/{000,001,002}.tar",
        "shards/*.tar",
        "shards:shards/0*.tar",
        [shards / "000.tar", "shards/001.tar", "shards/002.tar"],
        {"name": "shards", "location": "shards/{000..002}.tar"},
    ]
    for form in forms:
        ds = open_dataset(form)
        assert len(ds) == len(reference) and ds.captions() == reference.captions(), form
        if not isinstance(ds, MixedDataset):  # a list of specs is a mix of three sources
            assert ds.digest() == reference.digest(), form
    relative = open_dataset("shards/000.tar")
    assert relative.captions() == reference.captions()[:4]
    monkeypatch.chdir(shards)
    assert relative[0].image.tobytes() == reference[0].image.tobytes()


def test_shard_digest_is_stable_and_follows_edits(tmp_path):
    shards = build_shards(tmp_path / "shards")
    digest = open_dataset(shards).digest()
    assert digest == open_dataset(shards).digest()
    shutil.copytree(shards, tmp_path / "copy")
    assert open_dataset(tmp_path / "copy").digest() == digest
    write_shard(shards / "002.tar", [("e.png", sixteen_bit_png()), ("e.json", caption_json("sixteen bit", "zh"))])
    assert open_dataset(shards).digest() != digest


def test_missing_shards_and_empty_patterns_are_errors(tmp_path):
    shards = build_shards(tmp_path / "shards")
    with pytest.raises(CompressError, match="003.tar: no such shard"):
        open_dataset(str(shards / "{000..003}.tar"))
    with pytest.raises(CompressError, match=r"\*.tgz: no shard files match"):
        open_dataset(str(shards / "*.tgz"))
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(CompressError, match="empty_folder: no .tar shards"):
        open_dataset(tmp_path / "empty_folder")
    (shards / "x.tar.gz").write_bytes(b"")
    with pytest.raises(CompressError, match="plain .tar"):
        open_dataset({"name": "shards", "location": str(shards / "x.tar.gz")})


def test_brace_expansion():
    assert expand_braces("s/{000..003}.tar") == [f"s/{i:03d}.tar" for i in range(4)]
    assert expand_braces("{a,b}/{8..10}.tar") == ["a/8.tar", "a/9.tar", "a/10.tar", "b/8.tar", "b/9.tar", "b/10.tar"]
    assert expand_braces("{2..0}") == ["2", "1", "0"]
    assert expand_braces("plain{x}.tar") == ["plain{x}.tar"]


def test_damaged_shards_are_counted_and_keep_what_is_readable(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "000.tar").write_bytes(b"definitely not a tar archive " * 40)
    members = [
        ("a.json", caption_json("first")),
        ("a.png", noise_png(64, seed=1)),
        ("b.json", caption_json("second")),
        ("b.png", noise_png(64, seed=2)),
        ("c.json", caption_json("third")),
        ("c.png", noise_png(64, seed=3)),
    ]
    whole = write_shard(folder / "whole.tar", members).read_bytes()
    with tarfile.open(folder / "whole.tar") as tar:
        offsets = {m.name: (m.offset, m.offset_data, m.size) for m in tar.getmembers()}
    (folder / "whole.tar").unlink()
    _, b_data, b_size = offsets["b.png"]
    (folder / "001.tar").write_bytes(whole[: b_data + b_size // 2])  # cut inside b.png's data
    c_header = offsets["c.json"][0]
    (folder / "002.tar").write_bytes(whole[: c_header + 100])  # cut inside c's first header
    damaged = whole[:c_header] + b"\x13" * 512 + whole[c_header + 512 :]
    (folder / "003.tar").write_bytes(damaged)  # c's first header overwritten
    ds = open_dataset(folder)
    assert ds.skipped == Counter(corrupt_shard=4, truncated_image=1)  # 001.tar: b.png cut, and what follows lost
    assert sorted(key for key, reason in ds.skip_log if reason == "corrupt_shard") == ["000.tar", "001.tar", "002.tar", "003.tar"]
    assert [c for c, _ in ds.captions()] == ["first", "first", "second", "first", "second"]
    assert dict(ds.skip_log)["001.tar/b"] == "truncated_image"
    assert all(ds[i] is not None for i in range(len(ds)))
    with pytest.raises(BadSampleError, match="corrupt_shard") as caught:
        open_dataset(folder / "002.tar", on_bad="raise")
    assert "002.tar" in str(caught.value)


SHARD_RAISE_CASES = {
    # case: (members, reason, member the message must name, raised at open)
    "missing_caption": ([("k.jpg", noise_jpeg())], "missing_caption", "k.jpg", True),
    "missing_image": ([("k.json", caption_json("c"))], "missing_file", "k", True),
    "unsupported_member": ([("k.svg", b"<svg/>"), ("k.json", caption_json("c"))], "unsupported_format", "k.svg", True),
    "empty_caption": ([("k.png", noise_png()), ("k.json", caption_json(""))], "empty_caption", "k.png", True),
    "unknown_language": ([("k.png", noise_png()), ("k.json", caption_json("c", "ja"))], "unknown_language", "k.png", True),
    "bad_metadata": ([("k.png", noise_png()), ("k.json", b"[1, 2")], "bad_metadata", "k.json", True),
    "empty_file": ([("k.png", b""), ("k.json", caption_json("c"))], "empty_file", "k.png", True),
    **{
        name: ([(f"k{suffix}", builder()), ("k.json", caption_json("c"))], reason, f"k{suffix}", False)
        for name, (builder, suffix, reason) in BAD_IMAGES.items()
        if suffix in (".png", ".jpg", ".webp")
    },
}


@pytest.mark.parametrize("case", sorted(SHARD_RAISE_CASES))
def test_shard_on_bad_raise_names_the_member_and_the_reason(case, tmp_path):
    members, reason, named, at_open = SHARD_RAISE_CASES[case]
    shard = write_shard(tmp_path / "s.tar", members)
    with pytest.raises(BadSampleError) as caught:
        ds = open_dataset(shard, on_bad="raise")
        assert not at_open, "should have been refused when opened"
        ds[0]
    assert caught.value.reason == reason
    message = str(caught.value)
    assert reason in message and f"{shard}:{named}" in message


def test_datasets_pickle_for_worker_processes(tmp_path):
    ds = open_dataset(build_shards(tmp_path / "shards"))
    copy = pickle.loads(pickle.dumps(ds))
    assert len(copy) == len(ds) and copy.digest() == ds.digest()
    assert copy[0].image.tobytes() == ds[0].image.tobytes()


# ---------------------------------------------------------------- open_dataset


def test_open_dataset_refuses_what_it_cannot_open(tmp_path):
    with pytest.raises(CompressError, match="nowhere.jsonl: no such file"):
        open_dataset(str(tmp_path / "nowhere.jsonl"))
    (tmp_path / "table.csv").write_text("image,caption\n")
    with pytest.raises(CompressError, match="table.csv: not a data source"):
        open_dataset(tmp_path / "table.csv")
    manifest = write_manifest(tmp_path / "m.jsonl", [])
    with pytest.raises(CompressError, match="on_bad"):
        open_dataset(manifest, on_bad="ignore")
    with pytest.raises(CompressError, match="unknown option.*size"):
        open_dataset(manifest, size=3)
    with pytest.raises(CompressError, match="unknown data source plugin 'parquet'; available: demo, manifest, shards"):
        open_dataset({"name": "parquet", "location": "x"})
    with pytest.raises(CompressError, match="empty data spec"):
        open_dataset(" ")
    with pytest.raises(CompressError, match="nowhere.jsonl: no such manifest file"):
        open_dataset(f"manifest:{tmp_path / 'nowhere.jsonl'}")


def test_open_dataset_dict_and_prefix_forms(tmp_path):
    manifest = build_manifest_folder(tmp_path)
    by_path = open_dataset(str(manifest))
    by_dict = open_dataset({"name": "manifest", "location": str(manifest), "on_bad": "skip"})
    by_prefix = open_dataset(f"manifest:{manifest}")
    assert by_path.digest() == by_dict.digest() == by_prefix.digest()
    with pytest.raises(BadSampleError):
        open_dataset({"name": "manifest", "location": str(manifest), "on_bad": "raise"})


def test_demo_specs_are_delegated_to_the_registered_source_with_their_options(monkeypatch):
    import compress.demo_world.source as demo_source

    calls = []

    def open_demo(split="train", size=None, image_size=64, seed=0):
        calls.append(dict(split=split, size=size, image_size=image_size, seed=seed))
        return "demo dataset"

    monkeypatch.setattr(demo_source, "open_demo", open_demo)
    assert open_dataset("demo") == "demo dataset"
    open_dataset("demo:val", size=5, image_size=32)
    open_dataset({"name": "demo", "location": "test", "seed": 3})
    assert calls == [
        dict(split="train", size=None, image_size=64, seed=0),
        dict(split="val", size=5, image_size=32, seed=0),
        dict(split="test", size=None, image_size=64, seed=3),
    ]
    with pytest.raises(CompressError, match="unknown option.*lang"):
        open_dataset("demo", lang="en")


def test_the_demo_world_mixes_with_files(tmp_path):
    demo = open_dataset("demo:val", size=3, image_size=16)
    manifest = build_manifest_folder(tmp_path)
    mixed = open_dataset([{"name": "demo", "location": "val", "size": 3, "image_size": 16}, manifest])
    assert isinstance(mixed, MixedDataset)
    assert len(mixed) == 3 + len(GOOD_IMAGES) + len(BAD_IMAGES) + 1
    assert mixed[0].key == demo[0].key and mixed[3].caption == open_dataset(manifest)[0].caption
    assert mixed.captions()[:3] == demo.captions()
    assert mixed.skipped == MANIFEST_OPEN_SKIPS
    assert mixed.digest() != MixedDataset([open_dataset(manifest), demo]).digest()
    assert SkipStats.of(mixed).total == SkipStats.of(MixedDataset([mixed])).total == sum(MANIFEST_OPEN_SKIPS.values())


# ---------------------------------------------------------------- loading and skip statistics


def test_collate_drops_skipped_samples():
    image = Image.new("RGB", (1, 1))
    samples = [Sample(image, "a", "en", "1"), None, Sample(image, "b", "zh", "2"), None]
    batch = collate_samples(samples)
    assert isinstance(batch, SampleBatch) and [s.key for s in batch] == ["1", "2"]
    assert collate_samples([None, None]) == []


def test_skip_summary_line_and_report_dict(tmp_path):
    (tmp_path / "ok.png").write_bytes(noise_png())
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(BAD_IMAGES["broken_png"][0]())
    manifest = write_manifest(
        tmp_path / "m.jsonl",
        [
            {"image": "a.png", "caption": "a", "lang": "en"},
            {"image": "ok.png", "caption": "", "lang": "en"},
            {"image": "b.png", "caption": "b", "lang": "zh"},
            {"image": "ok.png", "caption": "ok", "lang": "zh"},
        ],
    )
    ds = open_dataset(manifest)
    assert SkipStats.of(ds).summary() == "skipped: 1 (empty_caption 1)"
    [ds[i] for i in range(len(ds))]
    stats = SkipStats.of(ds)
    assert stats.summary() == "skipped: 3 (corrupt_image 2, empty_caption 1)"
    assert stats.to_dict() == {"total": 3, "by_reason": {"corrupt_image": 2, "empty_caption": 1}}
    assert json.loads(json.dumps(stats.to_dict())) == stats.to_dict()
    assert SkipStats().summary() == "skipped: 0"


def test_skips_found_in_worker_processes_reach_the_training_process(tmp_path):
    ds = open_dataset(build_shards(tmp_path / "shards"))
    stats = SkipStats.of(ds)
    seen = []
    for epoch in range(2):
        loader = DataLoader(
            ds, batch_size=3, sampler=EpochSampler(len(ds), seed=1, epoch=epoch), collate_fn=collate_samples, num_workers=2
        )
        for batch in loader:
            stats.add_batch(batch)
            seen.extend(sample.key for sample in batch)
    assert ds.decode_failures == {}  # the decoding happened in the workers
    assert stats.counts == SHARD_OPEN_SKIPS + SHARD_ACCESS_SKIPS  # each bad image once, not once per epoch
    assert len(seen) == 2 * (SHARD_SAMPLES - sum(SHARD_ACCESS_SKIPS.values()))
    stats.add_dataset(ds)  # merging the main process's own view again does not double count
    assert stats.total == sum((SHARD_OPEN_SKIPS + SHARD_ACCESS_SKIPS).values())


# ---------------------------------------------------------------- sampling


def test_epoch_order_is_a_seeded_permutation():
    order = epoch_order(50, seed=7, epoch=0)
    assert sorted(order) == list(range(50))
    assert order == epoch_order(50, seed=7, epoch=0) == list(EpochSampler(50, 7, 0))
    assert order != epoch_order(50, seed=7, epoch=1)
    assert order != epoch_order(50, seed=8, epoch=0)
    assert epoch_order(50, seed=1, epoch=0) != epoch_order(50, seed=0, epoch=1)
    assert list(EpochSampler(0, 1, 0)) == [] and len(EpochSampler(0, 1, 0)) == 0


@pytest.mark.parametrize("start", [0, 1, 13, 29, 30])
def test_sampler_resumes_at_the_exact_position(start):
    full = list(EpochSampler(30, seed=3, epoch=2))
    resumed = EpochSampler(30, seed=3, epoch=2, start=start)
    assert list(resumed) == full[start:] and len(resumed) == 30 - start


def test_training_resumed_mid_epoch_sees_each_remaining_sample_once():
    n, batch_size, done = 23, 4, 3
    data = list(range(n))
    first = DataLoader(data, batch_size=batch_size, sampler=EpochSampler(n, seed=5, epoch=1))
    before = [batch.tolist() for _, batch in zip(range(done), first, strict=False)]  # stopped after three batches
    rest = DataLoader(data, batch_size=batch_size, sampler=EpochSampler(n, seed=5, epoch=1, start=done * batch_size))
    after = [batch.tolist() for batch in rest]
    uninterrupted = [batch.tolist() for batch in DataLoader(data, batch_size=batch_size, sampler=EpochSampler(n, 5, 1))]
    assert before + after == uninterrupted
    assert sorted(i for batch in before + after for i in batch) == data


def test_sampler_shares_an_epoch_between_ranks():
    n, world = 10, 3
    shares = [list(EpochSampler(n, seed=0, epoch=4, rank=rank, world_size=world)) for rank in range(world)]
    assert [len(share) for share in shares] == [4, 4, 4]
    assert set().union(*shares) == set(range(n))
    assert list(EpochSampler(n, 0, 4, start=2, rank=1, world_size=world)) == shares[1][2:]
    with pytest.raises(ValueError, match="start 5"):
        EpochSampler(n, 0, 4, start=5, rank=0, world_size=world)
    with pytest.raises(ValueError, match="rank 3"):
        EpochSampler(n, 0, 4, rank=3, world_size=world)


def test_spread_samples_takes_evenly_spaced_samples_and_passes_over_skipped_ones():
    from compress.data import spread_samples

    assert spread_samples(list(range(10)), 5, "ten") == [0, 2, 4, 6, 8]
    assert spread_samples([None, 1, 2, 3, 4, 5], 3, "six") == [2, 4]  # step 2: index 0 is skipped, not replaced
    with pytest.raises(CompressError, match="empty: no samples"):
        spread_samples([], 4, "empty")
    with pytest.raises(CompressError, match="bad: every sample was skipped"):
        spread_samples([None, None], 2, "bad")
    with pytest.raises(CompressError, match="zero: the sample count must be at least 1"):
        spread_samples([1, 2], 0, "zero")
