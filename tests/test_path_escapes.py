"""Paths read from files stay inside the folder they belong to.

- JSONL manifest: a relative image path that leaves the manifest's folder (`..`, or a symlink inside
  the folder pointing out) is a counted skip, `outside_folder` (an error naming the line under
  on_bad="raise"); an absolute path is the user's explicit choice (README, Data) and is read.
- Tar shards: nothing is ever extracted, so a member name is only a sample key; a member whose name
  is absolute, climbs out with `..`, is not UTF-8 or repeats is a counted skip, `bad_member_name`
  (tested in test_fuzz_readers.py).
- Teacher-cache index: a shard file that is absolute or leaves the cache folder (`..`, a symlink
  pointing out) makes the whole cache refused with one error naming `cache.json`.
"""

from __future__ import annotations

import json
import os

import pytest
from data_fixtures import noise_png
from reader_fixtures import valid_cache

from compress.cache import layout
from compress.cache.store import TeacherCache
from compress.data.manifest import open_manifest
from compress.errors import BadSampleError, CompressError
from compress.files import write_json_atomically


def _manifest(folder, images):
    lines = [json.dumps({"image": image, "caption": f"picture {n}", "lang": "en"}) for n, image in enumerate(images)]
    path = folder / "captions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def dataset(tmp_path):
    (tmp_path / "outside.png").write_bytes(noise_png())
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "in.png").write_bytes(noise_png())
    (folder / "sub" / "deep.png").write_bytes(noise_png())
    (folder / "link_out.png").symlink_to(tmp_path / "outside.png")
    (folder / "link_in.png").symlink_to(folder / "in.png")
    (folder / "dir_out").symlink_to(tmp_path)
    return folder


def test_relative_manifest_paths_that_leave_the_folder_are_counted_skips(dataset):
    inside = ["in.png", "sub/deep.png", "sub/../in.png", "./in.png", "link_in.png"]
    escaping = ["../outside.png", "sub/../../outside.png", "link_out.png", "dir_out/outside.png"]
    ds = open_manifest(_manifest(dataset, inside + escaping))
    assert [entry.name for entry in ds.entries] == inside
    assert ds.skipped == {"outside_folder": len(escaping)}
    assert all(ds[i] is not None for i in range(len(ds)))


def test_absolute_manifest_paths_are_the_users_choice_and_are_read(dataset):
    outside = str(dataset.parent / "outside.png")
    ds = open_manifest(_manifest(dataset, [outside, os.path.abspath(dataset / "in.png")]))
    assert len(ds) == 2 and not ds.skipped
    assert ds[0] is not None


def test_an_escaping_manifest_path_under_raise_names_the_line(dataset):
    path = _manifest(dataset, ["in.png", "../outside.png"])
    with pytest.raises(BadSampleError, match=r"captions\.jsonl:2\): outside_folder \('\.\./outside\.png' leaves"):
        open_manifest(path, on_bad="raise")


def test_a_manifest_reached_through_a_symlinked_folder_still_reads_its_own_files(dataset, tmp_path):
    _manifest(dataset, ["in.png", "sub/deep.png", "../outside.png"])
    (tmp_path / "alias").symlink_to(dataset)
    ds = open_manifest(tmp_path / "alias" / "captions.jsonl")
    assert len(ds) == 2 and ds.skipped == {"outside_folder": 1}


@pytest.fixture
def cache_folder(tmp_path):
    folder = tmp_path / "cache"
    return folder, valid_cache(folder)


def _with_shard_file(index, file):
    changed = json.loads(json.dumps(index))
    changed["shards"][0]["file"] = file
    return changed


def test_a_cache_index_pointing_out_of_its_folder_is_refused(cache_folder, tmp_path):
    folder, index = cache_folder
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((folder / index["shards"][0]["file"]).read_bytes())  # the same bytes: the digest matches
    for file in (str(outside), os.path.relpath(outside, folder), "shards/../../" + outside.name, "", "."):
        write_json_atomically(folder / layout.INDEX_FILE, _with_shard_file(index, file))
        with pytest.raises(CompressError, match=r"cache\.json: shard file .* is outside the cache folder"):
            TeacherCache(folder)


def test_a_cache_shard_symlinked_out_of_the_folder_is_refused(cache_folder, tmp_path):
    folder, index = cache_folder
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((folder / index["shards"][0]["file"]).read_bytes())
    (folder / layout.SHARD_DIR / "link.safetensors").symlink_to(outside)
    write_json_atomically(folder / layout.INDEX_FILE, _with_shard_file(index, "shards/link.safetensors"))
    with pytest.raises(CompressError, match="outside the cache folder"):
        TeacherCache(folder)


def test_the_untouched_cache_still_loads(cache_folder):
    folder, _ = cache_folder
    cache = TeacherCache(folder)
    cache.load()
    assert cache.keys() == ["k0", "k1"]
