"""JSONL manifests: one JSON object per line, `{"image": "...", "caption": "...", "lang": "zh"}`.

Relative image paths are resolved against the manifest's folder, so a dataset folder can move, and
must stay inside it: a relative path that leaves the folder (through "..", or a symlink pointing
out) is rejected as outside_folder. Absolute paths (and "~/...") are the user's explicit choice of
a file and are read where they point. Blank lines are allowed. `lang=` gives the language of lines
that have no "lang" key; without it such a line is a bad_manifest_line. Other keys on a line are ignored.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from compress.data.indexed import Entry, IndexedDataset
from compress.data.policy import SkipRecorder, normalise_language
from compress.data.progress import track
from compress.errors import CompressError

LARGE_MANIFEST_LINES = 20_000  # show a progress bar while checking manifests longer than this


def open_manifest(path: str | Path, on_bad: str = "skip", lang: str | None = None) -> IndexedDataset:
    """Read and check a manifest; images are decoded later, on access."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CompressError(f"{path}: no such manifest file")
    default_lang = _check_default_language(lang)
    recorder = SkipRecorder(on_bad)
    lines = path.read_bytes().split(b"\n")  # JSON Lines ends lines with \n only; a \r before it is JSON whitespace
    folder = os.path.abspath(path.parent)  # entries stay valid if the working folder changes
    real_folder = os.path.realpath(folder)
    sizes: dict[str, int | str] = {}  # image path -> bytes, or why it has none; images often repeat
    entries = []
    rows = track(lines, "checking manifest", show=len(lines) > LARGE_MANIFEST_LINES)
    for number, raw in enumerate(rows, start=1):
        entry = _entry(path, folder, real_folder, number, raw, default_lang, recorder, sizes)
        if entry is not None:
            entries.append(entry)
    return IndexedDataset(entries, recorder, kind="manifest", location=str(path))


def _entry(
    manifest: Path,
    folder: str,
    real_folder: str,
    number: int,
    raw: bytes,
    default_lang: str | None,
    recorder: SkipRecorder,
    sizes: dict[str, int | str],
) -> Entry | None:
    """The checked entry for one line, or None for a blank or rejected line."""
    key = f"{manifest.name}:{number}"
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        raw = raw[3:]
    if not raw.strip():
        return None
    record, problem = _parse_line(raw, default_lang)
    if problem:
        recorder.reject(key, f"{manifest}:{number}", "bad_manifest_line", problem)
        return None
    written = os.path.expanduser(record["image"])
    image_path = os.path.join(folder, written)  # an absolute path stays as it is
    where = f"{image_path} ({key})"
    if not os.path.isabs(written) and not _inside(real_folder, image_path):
        recorder.reject(key, where, "outside_folder", f"{record['image']!r} leaves {folder}")
        return None
    caption = record["caption"].strip()
    if not caption:
        recorder.reject(key, where, "empty_caption")
        return None
    lang = normalise_language(record["lang"])
    if lang is None:
        recorder.reject(key, where, "unknown_language", f"{record['lang']!r} is not en or zh")
        return None
    if image_path not in sizes:
        sizes[image_path] = _file_size(image_path)
    size = sizes[image_path]
    if isinstance(size, str):
        recorder.reject(key, where, "missing_file", size)
        return None
    if size == 0:
        recorder.reject(key, where, "empty_file")
        return None
    return Entry(key=key, name=record["image"], where=where, path=image_path, offset=-1, size=size, caption=caption, lang=lang)


def _inside(real_folder: str, path: str) -> bool:
    """Whether `path`, with every symlink resolved, lies in `real_folder` (itself resolved)."""
    try:
        resolved = os.path.realpath(path)
    except (OSError, ValueError):  # a symlink loop; NUL or unencodable characters (refused later)
        return True
    return os.path.commonpath([real_folder, resolved]) == real_folder


def _file_size(path: str) -> int | str:
    """The file's size in bytes, or why there is no file to read."""
    try:
        info = os.stat(path)
    except OSError as err:
        return "" if isinstance(err, FileNotFoundError) else err.strerror or type(err).__name__
    except ValueError as err:  # a NUL byte, or a lone surrogate the file system cannot encode
        return f"not a usable file name ({err})"
    return info.st_size if stat.S_ISREG(info.st_mode) else "not a regular file"


def _parse_line(raw: bytes, default_lang: str | None) -> tuple[dict, str]:
    """(record with image, caption and lang, "") or ({}, what is wrong with the line)."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        return {}, f"not UTF-8: {err.reason}"
    except json.JSONDecodeError as err:
        return {}, f"not JSON: {err.msg} at column {err.colno}"
    except RecursionError:
        return {}, "JSON nested too deeply"
    if not isinstance(record, dict):
        return {}, f"a JSON {type(record).__name__}, not an object"
    if "lang" not in record and default_lang is not None:
        record["lang"] = default_lang
    missing = [name for name in ("image", "caption", "lang") if name not in record]
    if missing:
        return {}, f"missing {', '.join(missing)}"
    for name in ("image", "caption"):
        if not isinstance(record[name], str):
            return {}, f"{name} is a JSON {type(record[name]).__name__}, not a string"
        if not _encodable(record[name]):
            return {}, f"{name} holds a lone surrogate escape (\\ud800-\\udfff), not text"
    if not record["image"].strip():
        return {}, "image is empty"
    return record, ""


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_default_language(lang: str | None) -> str | None:
    if lang is None:
        return None
    checked = normalise_language(lang)
    if checked is None:
        raise CompressError(f"lang={lang!r}: the default language must be en or zh")
    return checked
