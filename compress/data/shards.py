"""WebDataset-style tar shards, indexed up front so the dataset has random access.

A shard is an uncompressed .tar whose members are grouped into samples by key, the WebDataset way:
the key is the member path up to the first dot of its file name, the rest is the extension
("train/0042.jpg" and "train/0042.json" are sample "train/0042"). A sample has

- an image: key.jpg, key.jpeg, key.png or key.webp (the first present, in that order);
- a caption: "caption" in key.json, else the whole of key.txt (UTF-8);
- a language: "lang" in key.json, else the contents of key.lang, else the `lang=` option.

Other members (key.cls, key.npy, ...) are ignored when the sample has an image. Opening reads every
member header and the small caption files, records the byte offset of every image, and counts a
sample that cannot be used under a reason (see compress.data.policy.REASONS). Images are decoded
on access by reading their bytes at the recorded offset.

Shards are named by a path, a folder (every *.tar in it), a list of paths, or a pattern with
globs and WebDataset brace ranges/lists: "shards/{000..009}.tar", "shards/*.tar",
"{train,extra}/*.tar" (braces do not nest).
"""

from __future__ import annotations

import glob
import json
import os
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path

from compress.data.indexed import Entry, IndexedDataset
from compress.data.policy import SkipRecorder, normalise_language
from compress.data.progress import track
from compress.errors import CompressError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXTENSIONS = ("json", "txt", "lang")
COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst")
MAX_METADATA_BYTES = 1 << 20  # a .json/.txt/.lang member larger than this is not a caption
MANY_SHARDS = 16  # show a progress bar while indexing at least this many shards
_TAR_BLOCK = 512
_KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # WebDataset's base_plus_ext
_BRACES = re.compile(r"\{([^{}]*)\}")
_NUMERIC_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def open_shards(spec: str | Path | Sequence[str | Path], on_bad: str = "skip", lang: str | None = None) -> IndexedDataset:
    """Index every shard named by `spec`; images are decoded later, on access."""
    paths = [Path(os.path.abspath(path)) for path in resolve_shards(spec)]  # immune to later chdir
    default_lang = None
    if lang is not None:
        default_lang = normalise_language(lang)
        if default_lang is None:
            raise CompressError(f"lang={lang!r}: the default language must be en or zh")
    labels = shard_labels(paths)
    recorder = SkipRecorder(on_bad)
    entries: list[Entry] = []
    for path in track(paths, "indexing shards", show=len(paths) >= MANY_SHARDS):
        entries.extend(index_shard(path, labels[path], recorder, default_lang))
    location = str(spec) if isinstance(spec, (str, Path)) else ", ".join(str(p) for p in paths)
    return IndexedDataset(entries, recorder, kind="shards", location=location)


def resolve_shards(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """The shard files named by a path, folder, pattern or list of them, in order."""
    pieces = [spec] if isinstance(spec, (str, Path)) else list(spec)
    paths: list[Path] = []
    for piece in pieces:
        for name in expand_braces(str(piece)):
            paths.extend(_files_named(name))
    seen = set()
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            raise CompressError(f"{path}: the shard is listed twice")
        seen.add(resolved)
        if path.name.endswith(COMPRESSED_SUFFIXES):
            raise CompressError(f"{path}: compressed shards have no random access; store shards as plain .tar")
    if not paths:
        raise CompressError(f"{spec}: no shards given")
    return paths


def expand_braces(pattern: str) -> list[str]:
    """WebDataset (bash-style) brace expansion: "a{0..2}" -> a0 a1 a2, "{00..02}" keeps padding, "{x,y}"."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, body, tail = pattern[: match.start()], match.group(1), pattern[match.end() :]
    options = _brace_options(body)
    tails = expand_braces(tail)
    if options is None:  # "{abc}" is not an expansion: keep the braces
        return [head + "{" + body + "}" + rest for rest in tails]
    return [head + option + rest for option in options for rest in tails]


def shard_labels(paths: list[Path]) -> dict[Path, str]:
    """A short, unique name per shard: its path relative to the folder all the shards share."""
    absolute = {path: Path(os.path.abspath(path)) for path in paths}
    common = os.path.commonpath([str(full.parent) for full in absolute.values()]) if paths else ""
    return {path: full.relative_to(common).as_posix() for path, full in absolute.items()}


def index_shard(path: Path, label: str, recorder: SkipRecorder, default_lang: str | None) -> list[Entry]:
    """The entries of one shard; samples that cannot be used are rejected through `recorder`."""
    members: list[tarfile.TarInfo] = []
    stopped = ""  # why reading member headers stopped early, if it did
    try:
        with tarfile.open(path, mode="r:") as tar:
            try:
                for member in tar:
                    members.append(member)
            except (tarfile.TarError, OSError) as err:
                stopped = _first_line(err)
            end_of_members = tar.offset
    except (tarfile.TarError, OSError) as err:
        recorder.reject(label, str(path), "corrupt_shard", _first_line(err))
        return []
    groups: dict[str, dict[str, tarfile.TarInfo]] = {}
    bad_names: dict[str, tuple[str, str]] = {}  # key -> (member name, what is wrong with it)
    for member in members:
        if not member.isdir():
            key, ext = _split_member_name(member.name)
            sample = groups.setdefault(key, {})
            problem = _member_name_problem(member.name) or ("occurs twice in the shard" if ext.lower() in sample else "")
            if problem:
                bad_names.setdefault(key, (member.name, problem))
            sample[ext.lower()] = member
    file_size = path.stat().st_size
    entries = []
    with open(path, "rb") as shard:
        for key, sample_members in groups.items():
            if key in bad_names:
                name, problem = bad_names[key]
                recorder.reject(f"{label}/{key}", f"{path}:{name}", "bad_member_name", problem)
                continue
            entry = _entry(path, label, key, sample_members, shard, file_size, recorder, default_lang)
            if entry is not None:
                entries.append(entry)
        if stopped:
            after = f" after member {members[-1].name}" if members else ""
            recorder.reject(label, str(path), "corrupt_shard", f"{stopped}{after}; later samples are lost")
        else:
            _check_end_of_archive(path, label, shard, end_of_members, file_size, recorder)
    return entries


def _entry(
    path: Path,
    label: str,
    key: str,
    members: dict[str, tarfile.TarInfo],
    shard,
    file_size: int,
    recorder: SkipRecorder,
    default_lang: str | None,
) -> Entry | None:
    sample_key = f"{label}/{key}"
    image_ext = next((ext for ext in IMAGE_EXTENSIONS if ext in members), None)
    if image_ext is None:
        others = sorted(ext for ext in members if ext not in CAPTION_EXTENSIONS)
        if others:
            where = f"{path}:{members[others[0]].name}"
            recorder.reject(sample_key, where, "unsupported_format", f"no .jpg/.jpeg/.png/.webp member, only .{others[0]}")
        else:
            recorder.reject(sample_key, f"{path}:{key}", "missing_file", "no .jpg/.jpeg/.png/.webp member")
        return None
    image = members[image_ext]
    where = f"{path}:{image.name}"
    if not image.isfile() or image.sparse is not None:
        recorder.reject(sample_key, where, "unsupported_format", "a link or sparse tar member, not a plain file")
        return None
    caption, lang, problem = _read_caption(path, members, shard, file_size)
    if problem:
        recorder.reject(sample_key, problem[0], "bad_metadata", problem[1])
        return None
    if caption is None:
        recorder.reject(sample_key, where, "missing_caption", f"no {key}.json caption or {key}.txt member")
        return None
    caption = caption.strip()
    if not caption:
        recorder.reject(sample_key, where, "empty_caption")
        return None
    given_lang = lang if lang is not None else default_lang
    lang = normalise_language(given_lang)
    if lang is None:
        detail = f"{given_lang!r} is not en or zh"
        if given_lang is None:
            detail = "no lang in .json, no .lang member, no lang= option"
        recorder.reject(sample_key, where, "unknown_language", detail)
        return None
    if image.size == 0:
        recorder.reject(sample_key, where, "empty_file")
        return None
    if image.offset_data + image.size > file_size:
        recorder.reject(sample_key, where, "truncated_image", "the shard ends inside this member")
        return None
    return Entry(
        key=sample_key,
        name=f"{label}/{image.name}",
        where=where,
        path=str(path),
        offset=image.offset_data,
        size=image.size,
        caption=caption,
        lang=lang,
    )


def _read_caption(path: Path, members: dict[str, tarfile.TarInfo], shard, file_size: int):
    """(caption or None, lang or None, ()) or (None, None, (where, problem)) for unreadable metadata."""
    caption = lang = None
    texts = {}
    for ext in CAPTION_EXTENSIONS:
        if ext in members:
            member = members[ext]
            where = f"{path}:{member.name}"
            if not member.isfile() or member.sparse is not None:
                return None, None, (where, "a link, device or sparse tar member, not a plain file")
            if member.offset_data + member.size > file_size:
                return None, None, (where, "the shard ends inside this member")
            if member.size > MAX_METADATA_BYTES:
                return None, None, (where, f"{member.size} bytes; caption files are read whole, up to {MAX_METADATA_BYTES}")
            shard.seek(member.offset_data)
            try:
                texts[ext] = shard.read(member.size).decode("utf-8")
            except UnicodeDecodeError as err:
                return None, None, (where, f"not UTF-8: {err.reason}")
    if "json" in texts:
        where = f"{path}:{members['json'].name}"
        try:
            meta = json.loads(texts["json"])
        except json.JSONDecodeError as err:
            return None, None, (where, f"not JSON: {err.msg} at line {err.lineno} column {err.colno}")
        if not isinstance(meta, dict):
            return None, None, (where, f"a JSON {type(meta).__name__}, not an object")
        if "caption" in meta and not isinstance(meta["caption"], str):
            return None, None, (where, f"caption is a JSON {type(meta['caption']).__name__}, not a string")
        caption = meta.get("caption")
        lang = meta.get("lang")
    if caption is None and "txt" in texts:
        caption = texts["txt"]
    if lang is None and "lang" in texts:
        lang = texts["lang"]
    return caption, lang, ()


def _check_end_of_archive(path: Path, label: str, shard, end_of_members: int, file_size: int, recorder: SkipRecorder) -> None:
    """Python's tarfile stops quietly at a damaged header or a cut-off end; such a shard is counted.

    After the last member a tar has zero blocks or nothing at all; anything else means the
    members from there on could not be read.
    """
    shard.seek(end_of_members)
    rest = shard.read(2 * _TAR_BLOCK)
    if rest.strip(b"\0") == b"":
        return
    if file_size - end_of_members < _TAR_BLOCK:
        reason_detail = f"the file ends inside a member header at byte {end_of_members}; later samples are lost"
    else:
        reason_detail = f"unreadable tar header at byte {end_of_members}; later samples are lost"
    recorder.reject(label, str(path), "corrupt_shard", reason_detail)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _member_name_problem(name: str) -> str:
    """What makes a member name unusable as a sample key, or "" (such names never reach a path, but a
    key that climbs out of the shard, or cannot be written as UTF-8, is no safe name for anything)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not UTF-8"
    if name.startswith("/"):
        return "an absolute name"
    if ".." in name.split("/"):
        return "climbs out of the shard with .."
    return ""


def _split_member_name(name: str) -> tuple[str, str]:
    match = _KEY_AND_EXTENSION.match(name)
    return (match.group(1), match.group(2)) if match else (name, "")


def _brace_options(body: str) -> list[str] | None:
    numeric = _NUMERIC_RANGE.match(body)
    if numeric:
        first, last = numeric.group(1), numeric.group(2)
        padded = any(len(n.lstrip("-")) > 1 and n.lstrip("-").startswith("0") for n in (first, last))
        width = max(len(first), len(last)) if padded else 0
        start, stop = int(first), int(last)
        step = 1 if stop >= start else -1
        return [str(n).zfill(width) for n in range(start, stop + step, step)]
    if "," in body:
        return body.split(",")
    return None


def _files_named(name: str) -> list[Path]:
    if any(char in name for char in "*?["):
        matches = sorted(Path(match) for match in glob.glob(os.path.expanduser(name)) if Path(match).is_file())
        if not matches:
            raise CompressError(f"{name}: no shard files match this pattern")
        return matches
    path = Path(name).expanduser()
    if path.is_dir():
        shards = sorted(child for child in path.glob("*.tar") if child.is_file())
        if not shards:
            raise CompressError(f"{path}: no .tar shards in this folder")
        return shards
    if not path.is_file():
        raise CompressError(f"{path}: no such shard file")
    return [path]
