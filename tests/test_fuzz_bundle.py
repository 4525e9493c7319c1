"""Property-based fuzzing of the bundle readers: `compress.bundle.load_bundle` and the Python
reference client, on a real exported bundle whose manifest.json and golden.json are mutated.

Each mutated bundle either loads or is refused with one error of the reader's own type (`BundleError`,
a `CompressError`, for the library; `BundleClientError` for the client) naming the bundle's file;
any other exception fails the test.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from export_fixtures import shared_bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compress.bundle import load_bundle
from compress.errors import CompressError
from compress.files import file_sha256

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "python"))
from bundle_client import BundleClient, BundleClientError  # noqa: E402

CAMPAIGN = int(os.environ.get("COMPRESS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=CAMPAIGN or 60,
    deadline=None,  # a valid mutation loads the .pte programs in the client
    derandomize=not CAMPAIGN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

PATHS = st.sampled_from(
    ["../outside.json", "/etc/passwd", "labels\\x.json", "labels/../../x", "", ".", "golden/", "a/./b", "manifest.json"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=12) | PATHS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def bundle_copy(tmp_path_factory):
    source, _, _ = shared_bundle(tmp_path_factory)
    folder = tmp_path_factory.mktemp("fuzzed") / "bundle"
    shutil.copytree(source, folder)
    originals = {name: (folder / name).read_bytes() for name in ("manifest.json", "golden.json")}
    return folder, originals


def _places(value, prefix=()):
    """Every (path of keys/indexes) inside a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _places(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _places(child, (*prefix, index))


def _mutate(document, data):
    """The document with one place replaced by a random value, or deleted."""
    document = copy.deepcopy(document)
    places = [p for p in _places(document) if p]
    place = data.draw(st.sampled_from(places))
    parent = document
    for key in place[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        parent[place[-1]] = data.draw(JSON_VALUES)
    elif isinstance(parent, dict):
        del parent[place[-1]]
    else:
        parent.pop(place[-1])
    return document


def _relist(folder: Path, name: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = file_sha256(folder / name)
            entry["bytes"] = (folder / name).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _read_both(folder: Path) -> None:
    try:
        load_bundle(folder)
    except CompressError as err:
        assert str(folder) in str(err), str(err)
    try:
        BundleClient(folder)
    except BundleClientError as err:
        assert str(folder) in str(err), str(err)


@FUZZ
@given(data=st.data(), which=st.sampled_from(["manifest.json", "golden.json"]), rounds=st.integers(1, 3))
def test_a_mutated_manifest_or_golden_file_loads_or_is_refused_with_one_error(bundle_copy, data, which, rounds):
    folder, originals = bundle_copy
    document = json.loads(originals[which])
    for _ in range(rounds):
        document = _mutate(document, data)
    try:
        (folder / which).write_text(json.dumps(document, ensure_ascii=False, allow_nan=True), encoding="utf-8")
        if which == "golden.json":  # list the mutated file's digest, so the readers parse it instead of refusing its sha256
            _relist(folder, which)
        _read_both(folder)
    finally:
        for name, content in originals.items():
            (folder / name).write_bytes(content)


@FUZZ
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_a_manifest_of_random_bytes_is_refused_with_one_error(bundle_copy, content):
    folder, originals = bundle_copy
    try:
        (folder / "manifest.json").write_bytes(content)
        _read_both(folder)
    finally:
        (folder / "manifest.json").write_bytes(originals["manifest.json"])


def test_the_unmutated_copy_loads(bundle_copy):
    folder, _ = bundle_copy
    assert load_bundle(folder).manifest["schema_version"] == 2
    BundleClient(folder)
