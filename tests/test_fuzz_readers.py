"""Property-based fuzzing of every reader of user files: JSONL manifests, tar shards, latency tables,
search-space YAML and the teacher-cache index.

Each generated input either works, is skipped and counted under the data policy, or raises one
`CompressError` naming the file; any other exception, or a run past the deadline, fails the test.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from data_fixtures import noise_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reader_fixtures import valid_cache

from compress.cache import layout
from compress.cache.store import TeacherCache
from compress.data.manifest import open_manifest
from compress.data.policy import REASONS
from compress.data.shards import open_shards
from compress.errors import CompressError
from compress.files import write_json_atomically
from compress.search.lut import LatencyTable
from compress.search.space import load_space

# Seconds per fuzzer in the suite; COMPRESS_FUZZ_EXAMPLES=2000 runs a longer, randomised campaign.
CAMPAIGN = int(os.environ.get("COMPRESS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=CAMPAIGN or 60,
    deadline=2000,
    derandomize=not CAMPAIGN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PNG = noise_png(8)


def _fresh_file(folder: Path, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(dir=folder, suffix=suffix)
    os.close(handle)
    return Path(name)


def _use_every_sample(ds) -> None:
    """Touch everything a training run would: every item, the digest, the captions, the counts."""
    for index in range(len(ds)):
        ds[index]
    ds.digest()
    ds.captions()
    assert set(ds.skipped) <= set(REASONS)


def _names_the_file(err: CompressError, path: Path) -> None:
    assert str(path) in str(err) or path.name in str(err), str(err)


# ---------------------------------------------------------------- JSONL manifests


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    """A dataset folder: a good image, an empty file, a folder, a link out, and a file outside it."""
    root = tmp_path_factory.mktemp("fuzz")
    outside = root / "outside.png"
    outside.write_bytes(PNG)
    folder = root / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.png").write_bytes(PNG)
    (folder / "sub" / "nested.png").write_bytes(PNG)
    (folder / "empty.png").write_bytes(b"")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder / "out.png").symlink_to(outside)
    return folder


IMAGE_PATHS = st.sampled_from(
    [
        "good.png",
        "sub/nested.png",
        "./good.png",
        "sub/../good.png",
        "empty.png",
        "bad.png",
        "sub",
        "missing.png",
        "out.png",
        "../outside.png",
        "../../etc/passwd",
        "/etc/passwd",
        "/dev/zero",
        "~/x.png",
        "",
        " ",
        "a\x00b.png",
        "\ud800.png",
        "x" * 5000,
        "é/中文.png",
    ]
) | st.text(max_size=40)
CAPTIONS = st.sampled_from(["a red square", "一个红色方块", "", "  ", "\ud83d", "\x00"]) | st.text(max_size=30)
LANGS = st.sampled_from(["en", "zh", "EN ", "fr", "", None, 3]) | st.text(max_size=4)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
RECORDS = st.fixed_dictionaries(
    {}, optional={"image": IMAGE_PATHS | JSON_VALUES, "caption": CAPTIONS | JSON_VALUES, "lang": LANGS, "extra": JSON_VALUES}
)


def _json_bytes(value) -> bytes:
    """UTF-8 JSON that may hold lone surrogates, as a broken writer would leave them."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _line(draw_kind, value) -> bytes:
    if draw_kind == "record":
        return _json_bytes(value)
    if draw_kind == "escaped":
        return json.dumps(value).encode()
    return value


MANIFEST_LINES = st.lists(
    st.one_of(
        st.tuples(st.just("record"), RECORDS),
        st.tuples(st.just("escaped"), RECORDS),
        st.tuples(st.just("bytes"), st.binary(max_size=60)),
        st.tuples(
            st.just("bytes"),
            st.sampled_from(
                [
                    b"",
                    b"\xef\xbb\xbf{}",
                    b"[" * 5000,
                    b'{"image": 1e999}',
                    b'{"image": "good.png", "caption": "x", "lang": "en"}' * 2,
                ]
            ),
        ),
    ),
    max_size=12,
)


@FUZZ
@given(lines=MANIFEST_LINES, on_bad=st.sampled_from(["skip", "raise"]))
def test_fuzzed_manifests_work_skip_or_raise_one_error(data_folder, lines, on_bad):
    path = _fresh_file(data_folder, ".jsonl")
    text = b"\n".join(_line(kind, value) for kind, value in lines)
    path.write_bytes(text)
    try:
        ds = open_manifest(path, on_bad=on_bad)
        _use_every_sample(ds)
    except CompressError as err:
        _names_the_file(err, path)
        return
    finally:
        path.unlink()
    if on_bad == "skip":
        assert len(ds) + sum(ds.skipped_at_open.values()) <= text.count(b"\n") + 1  # each line used or counted once


def test_manifest_lines_end_at_newlines_only(data_folder):
    path = _fresh_file(data_folder, ".jsonl")  # a bare \r is JSON whitespace, \r\n a Windows line end
    path.write_bytes(
        b'{"image": "good.png",\r "caption": "a", "lang": "en"}\r\n{"image": "good.png", "caption": "b",'
        b' "lang": "zh"}\r\n\x00\r\x00\n'
    )
    try:
        ds = open_manifest(path)
        assert [entry.caption for entry in ds.entries] == ["a", "b"] and ds.skipped == {"bad_manifest_line": 1}
        assert ds.skip_log == [(f"{path.name}:3", "bad_manifest_line")]
    finally:
        path.unlink()


# ---------------------------------------------------------------- tar shards

MEMBER_NAMES = st.sampled_from(
    [
        "a.png",
        "a.json",
        "a.txt",
        "a.lang",
        "b.jpg",
        "b.json",
        "../up.png",
        "../up.json",
        "/abs.png",
        "/abs.json",
        "dir/../../c.png",
        "dir/c.png",
        "dir/c.json",
        "./d.png",
        "./d.json",
        "e",
        ".hidden.png",
        "f.PNG",
        "f.JSON",
    ]
) | st.text(min_size=1, max_size=12)
MEMBER_TYPES = st.sampled_from(
    [tarfile.REGTYPE] * 6
    + [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE]
)
MEMBER_DATA = st.one_of(
    st.just(PNG),
    st.just(PNG[: len(PNG) // 2]),
    st.binary(max_size=40),
    st.builds(lambda caption, lang: _json_bytes({"caption": caption, "lang": lang}), CAPTIONS | JSON_VALUES, LANGS),
    st.sampled_from([b"", b"{", b"[]", b"\xff\xfe", b"en", b"zh", b"a caption", b"[" * 3000]),
)
MEMBERS = st.lists(st.tuples(MEMBER_NAMES, MEMBER_TYPES, MEMBER_DATA, st.booleans()), max_size=10)


def _tar_bytes(members, tar_format) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format, encoding="utf-8", errors="surrogateescape") as tar:
        for name, kind, data, non_utf8 in members:
            info = tarfile.TarInfo(
                name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                + ("\udcff" if non_utf8 and tar_format != tarfile.PAX_FORMAT else "")
            )
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "../../outside.png" if non_utf8 else "a.png"
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


@FUZZ
@given(
    members=MEMBERS,
    tar_format=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
    cut=st.none() | st.integers(0, 4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=3),
    on_bad=st.sampled_from(["skip", "raise"]),
)
def test_fuzzed_shards_work_skip_or_raise_one_error(data_folder, members, tar_format, cut, flips, on_bad):
    data = bytearray(_tar_bytes(members, tar_format))
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    if cut is not None:
        data = data[:cut]
    path = _fresh_file(data_folder, ".tar")
    path.write_bytes(bytes(data))
    try:
        ds = open_shards(path, on_bad=on_bad)
        _use_every_sample(ds)
        for entry in ds.entries:  # a sample key never climbs out of the shard or names an absolute path
            member = entry.key.split("/", 1)[1]
            assert not member.startswith("/") and ".." not in member.split("/"), entry.key
            entry.key.encode("utf-8")
    except CompressError as err:
        _names_the_file(err, path)
    finally:
        path.unlink()


def test_shard_members_that_climb_out_are_absolute_or_repeat_are_counted(tmp_path):
    members = [
        ("ok.png", tarfile.REGTYPE, PNG, False),
        ("ok.txt", tarfile.REGTYPE, b"a square", False),
        ("../up.png", tarfile.REGTYPE, PNG, False),
        ("../up.txt", tarfile.REGTYPE, b"up", False),
        ("/abs.png", tarfile.REGTYPE, PNG, False),
        ("/abs.txt", tarfile.REGTYPE, b"abs", False),
        ("twice.png", tarfile.REGTYPE, PNG, False),
        ("twice.txt", tarfile.REGTYPE, b"one", False),
        ("twice.txt", tarfile.REGTYPE, b"two", False),
        ("odd.png", tarfile.REGTYPE, PNG, True),
        ("odd.txt", tarfile.REGTYPE, b"odd", True),
        ("link.png", tarfile.SYMTYPE, b"", False),
        ("link.txt", tarfile.REGTYPE, b"link", False),
        ("dev.png", tarfile.CHRTYPE, b"", False),
        ("dev.txt", tarfile.REGTYPE, b"dev", False),
    ]
    path = tmp_path / "s.tar"
    path.write_bytes(_tar_bytes(members, tarfile.GNU_FORMAT))
    ds = open_shards(path, lang="en")
    assert [entry.key for entry in ds.entries] == ["s.tar/ok"]
    assert ds.skipped == {"bad_member_name": 4, "unsupported_format": 2}
    with pytest.raises(CompressError, match=r"s\.tar:\.\./up\.png: bad_member_name \(climbs out"):
        open_shards(path, lang="en", on_bad="raise")


# ---------------------------------------------------------------- latency tables

LUT_VALUES = st.one_of(JSON_VALUES, st.just(10**400), st.just(-1), st.just(float("nan")), st.just(True))
LUT_TABLES = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(["compress-op-latency-table", "other", None, 1]),
        "version": st.sampled_from([1, 2, "1", None, 1.0]),
        "unit": st.sampled_from(["ms", "s", None, 1]),
        "device": JSON_VALUES,
        "runtime": JSON_VALUES,
        "ops": st.dictionaries(st.text(max_size=20), LUT_VALUES, max_size=4) | JSON_VALUES,
    },
)


@FUZZ
@given(table=LUT_TABLES | JSON_VALUES, raw=st.none() | st.binary(max_size=80) | st.sampled_from([b"[" * 100000, b"1" * 5000]))
def test_fuzzed_latency_tables_load_or_raise_one_error(tmp_path_factory, table, raw):
    folder = tmp_path_factory.getbasetemp()
    path = _fresh_file(folder, ".json")
    path.write_bytes(raw if raw is not None else json.dumps(table).encode())
    try:
        loaded = LatencyTable.load(path)
        loaded.latency(dict.fromkeys(loaded.ops, 2), on_unknown="zero")
        assert all(isinstance(v, float) and v >= 0 for v in loaded.ops.values())
    except CompressError as err:
        _names_the_file(err, path)
    finally:
        path.unlink()


# ---------------------------------------------------------------- search-space YAML

YAML_SNIPPETS = st.sampled_from(
    [
        "family: image\ngrid:\n  model: [mobilevitv2_050]\n  image_size: [64]\n",
        "family: text\ncandidates:\n  - {layers: 1, hidden: 32, heads: 2, ffn: 64, max_length: 8}\n",
        "family: text\ncandidates:\n  - {layers: 1, hidden: 30, heads: 0, ffn: -5, max_length: 8}\n",
        "family: text\ncandidates:\n  - {layers: x, hidden: [1], heads: {a: 1}, pooling: 3, norm: null}\n",
        "family: image\ncandidates:\n  - {model: mobilevitv2_050, image_size: [1, 2]}\n"
        "  - {model: [a], image_size: 2001-13-45}\n",
        "family: image\ngrid:\n" + "".join(f"  opt{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for i in range(12)),
        "family: text\ngrid:\n"
        + "".join(
            f"  {k}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for k in ("layers", "hidden", "heads", "ffn", "max_length", "vocab_size")
        ),
        "family: image\nembed_dim: 1e999\n",
        "family: image\nwhen: 2001-13-45\n",
        "a: &a [*a]\n",
        "[" * 3000,
        "family: image\nfixed: {checkpoint: /nonexistent.safetensors}\ncandidates: [{}]\n",
        "? [a, b]\n: c\n",
        "family: !!python/object:os.system x\n",
        "\t",
        "%YAML 9.9\n---\n",
        "family: image\n" * 2,
    ]
)


@FUZZ
@given(
    text=YAML_SNIPPETS | st.text(max_size=120) | st.builds(lambda a, b: a + b, YAML_SNIPPETS, st.text(max_size=20)),
    raw=st.none() | st.binary(max_size=40),
)
def test_fuzzed_search_spaces_load_or_raise_one_error(tmp_path_factory, text, raw):
    path = _fresh_file(tmp_path_factory.getbasetemp(), ".yaml")
    path.write_bytes(raw if raw is not None else text.encode("utf-8", "surrogatepass"))
    try:
        space = load_space(path)
        assert len(space) >= 1
    except CompressError as err:
        _names_the_file(err, path)
    finally:
        path.unlink()


# ---------------------------------------------------------------- the teacher-cache index


def _mutate(index: dict, path: tuple, value) -> dict:
    out = json.loads(json.dumps(index))
    target = out
    for step in path[:-1]:
        target = target[step]
    if value == "<drop>":
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out


INDEX_PATHS = st.sampled_from(
    [
        ("teacher",),
        ("teacher", "fingerprint"),
        ("teacher", "embed_dim"),
        ("teacher", "image"),
        ("dataset",),
        ("dataset", "digest"),
        ("dataset", "size"),
        ("augmentation",),
        ("augmentation", "views"),
        ("augmentation", "name"),
        ("augmentation", "crop_scale"),
        ("samples",),
        ("plan_digest",),
        ("shards",),
        ("shards", 0),
        ("shards", 0, "file"),
        ("shards", 0, "sha256"),
        ("format",),
        ("version",),
    ]
)
INDEX_VALUES = st.one_of(
    st.just("<drop>"),
    JSON_VALUES,
    st.sampled_from(
        [
            "../../outside.safetensors",
            "/etc/passwd",
            "shards/../../x",
            "shards/../cache.json",
            "shards",
            "",
            [1, "a"],
            {"file": "/etc/passwd", "sha256": "0"},
            -1,
            10**30,
            "crop-flip",
        ]
    ),
)


@pytest.fixture(scope="module")
def cache_folder(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("cache")
    return folder, valid_cache(folder)


@FUZZ
@given(changes=st.lists(st.tuples(INDEX_PATHS, INDEX_VALUES), max_size=3), raw=st.none() | st.binary(max_size=40))
def test_fuzzed_cache_indexes_load_or_raise_one_error(cache_folder, changes, raw):
    folder, index = cache_folder
    for path, value in changes:
        try:
            index = _mutate(index, path, value)
        except (KeyError, IndexError, TypeError, AttributeError):
            pass  # the mutation's parent is already gone or not a container
    index_file = folder / layout.INDEX_FILE
    if raw is not None:
        index_file.write_bytes(raw)
    else:
        write_json_atomically(index_file, index)
    try:
        cache = TeacherCache(folder)
        facts = (
            cache.fingerprint,
            cache.dataset_digest,
            cache.embed_dim,
            cache.views,
            len(cache),
            cache.dataset_size,
            cache.has_image_tower,
            cache.has_text_tower,
            repr(cache),
        )
        assert all(fact is not None for fact in facts)
        cache.load()
        for key in cache.keys():
            cache.embeddings(key)
    except CompressError as err:
        assert str(folder) in str(err), str(err)
