"""A map-style dataset over an index of (image location, caption, language) entries.

Manifests and tar shards both build such an index when opened: the cheap checks (caption,
language, file or member present, non-zero size) run then, so every entry in the index has passed
them. Images are decoded on access; a decoding failure returns None under on_bad="skip" (counted
once per sample) and raises `BadSampleError` under on_bad="raise".
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from torch.utils.data import Dataset

from compress.data.images import load_image
from compress.data.policy import SkipRecorder, journal_skip
from compress.data.sample import Sample
from compress.errors import BadSampleError

DIGEST_VERSION = "compress.data/1"


@dataclass(frozen=True, slots=True)
class Entry:
    """One sample candidate: where its image bytes are and what its caption says."""

    key: str  # stable id within the source: "captions.jsonl:12" or "000003.tar/sample_0042"
    name: str  # the listing name hashed into the digest: manifest path as written, or shard/member
    where: str  # what error messages name: the image file, or shard:member
    path: str  # the image file, or the shard holding it
    offset: int  # -1: the whole file at `path`; else where the member's bytes start in the shard
    size: int  # bytes of the image file or member
    caption: str
    lang: str

    def read(self) -> bytes | str:
        """The image file's path, or the member's bytes read from the shard."""
        if self.offset < 0:
            return self.path
        try:
            with open(self.path, "rb") as shard:
                shard.seek(self.offset)
                data = shard.read(self.size)
        except FileNotFoundError:
            raise BadSampleError(self.where, "missing_file", "the shard is gone") from None
        if len(data) < self.size:
            raise BadSampleError(self.where, "truncated_image", f"the shard ends {self.size - len(data)} bytes early")
        return data


class IndexedDataset(Dataset):
    """`ds[i] -> Sample | None`; `skipped`, `skip_log`, `digest()` and `captions()` as every source has.

    `skipped` counts, per reason, the samples rejected when the source was opened plus those whose
    image failed to decode in this process; `skipped_at_open` holds the first part alone.
    """

    def __init__(self, entries: list[Entry], recorder: SkipRecorder, kind: str, location: str):
        self.entries = entries
        self.kind = kind
        self.location = location
        self.on_bad = recorder.on_bad
        self._recorder = recorder
        self.skipped_at_open: Counter = Counter(recorder.skipped)
        self.decode_failures: dict[str, str] = {}  # key -> reason, for images that failed to decode here
        self._digest: str | None = None

    @property
    def skipped(self) -> Counter:
        return self._recorder.skipped

    @property
    def skip_log(self) -> list[tuple[str, str]]:
        """(key, reason) of the first skips, open time and access time together (bounded)."""
        return self._recorder.log

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Sample | None:
        entry = self.entries[index]
        if entry.key in self.decode_failures:
            return None
        try:
            image = load_image(entry.read(), entry.where)
        except BadSampleError as err:
            self._recorder.reject(entry.key, err.source, err.reason, err.detail)  # raises under "raise"
            self.decode_failures[entry.key] = err.reason
            journal_skip(self.location, entry.key, err.reason)
            return None
        return Sample(image=image, caption=entry.caption, lang=entry.lang, key=entry.key)

    def captions(self) -> list[tuple[str, str]]:
        """(caption, lang) of every entry, in index order, without decoding any image."""
        return [(entry.caption, entry.lang) for entry in self.entries]

    def digest(self) -> str:
        """sha256 hex over the listing (keys, names, sizes, captions, languages) in index order.

        Folder moves do not change it (manifest paths are hashed as written, shards by file name);
        an edited caption, an added or removed sample, or an image of a different size do.
        """
        if self._digest is None:
            hasher = hashlib.sha256(f"{DIGEST_VERSION}\n{self.kind}\n".encode())
            for entry in self.entries:
                row = [entry.key, entry.name, entry.size, entry.caption, entry.lang]
                # surrogatepass: a non-UTF-8 file name (held as surrogate escapes) still hashes, to its own digest
                hasher.update(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
            self._digest = hasher.hexdigest()
        return self._digest

    def __repr__(self) -> str:
        skipped = sum(self.skipped.values())
        return f"{type(self).__name__}({self.kind} {self.location!r}, {len(self)} samples, {skipped} skipped)"
