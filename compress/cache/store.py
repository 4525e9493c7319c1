"""Reading a teacher cache and feeding it to the Distiller in place of the online teacher.

    cache = TeacherCache("caches/demo")
    data = open_data("demo:train")
    train = CachedViewDataset(data, cache)        # only needed when the cache stores augmented views
    targets = cache.targets_for(train, teacher_fingerprint=teacher.fingerprint)
    Distiller(teacher, student, data=train, targets=targets).fit("distill")

`targets_for` refuses, with a `CompressError` naming the problem, a cache built by another teacher,
over other data (dataset digest), with other augmentation settings, or one that lacks a key the
training asks for. Nothing is ever looked up by position: every row is found by `Sample.key`.

Augmented caches: `CachedViewDataset` yields each stored view of each sample once per pass (its
length is samples x views): item j is view j // N of sample j % N, its image is the view replayed
from the stored parameters and its key is "<sample key>#v<view>", which the targets callable
resolves to that view's teacher embedding. The student thus sees exactly what the teacher saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch.utils.data import Dataset

from compress.cache import layout
from compress.cache.augment import Augmentation, ViewParams, apply_augmentation, make_augmentation, params_from_tensors
from compress.data.sample import Sample
from compress.errors import CompressError
from compress.files import file_sha256

VIEW_SUFFIX = re.compile(r"^(?P<key>.*)#v(?P<view>\d+)$")


def view_key(key: str, view: int) -> str:
    """The key a `CachedViewDataset` gives view `view` of the sample keyed `key`."""
    return f"{key}#v{view}"


class TeacherCache:
    """A finished teacher cache folder (its `cache.json` present), loaded lazily and checked on load."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        index_file = self.folder / layout.INDEX_FILE
        if not index_file.is_file() and (self.folder / layout.PLAN_FILE).is_file():
            raise CompressError(
                f"{self.folder}: the cache build is unfinished (no {layout.INDEX_FILE}); rerun "
                "`compress cache build` with the same options, or `compress cache finalize`"
            )
        if not self.folder.is_dir():
            raise CompressError(f"{self.folder}: no such teacher cache folder")
        self.index = layout.check_index(
            layout.read_json(index_file, "the index of a teacher cache (is this a cache folder?)"), index_file
        )
        try:
            self.augmentation = make_augmentation(Augmentation.from_dict(self.index["augmentation"]))
        except (CompressError, TypeError, ValueError) as exc:
            raise CompressError(f"{index_file}: augmentation is not understood ({exc})") from None
        self._rows: dict[str, int] | None = None
        self._tensors: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ facts from the index

    @property
    def fingerprint(self) -> str:
        return self.index["teacher"]["fingerprint"]

    @property
    def dataset_digest(self) -> str:
        return self.index["dataset"]["digest"]

    @property
    def embed_dim(self) -> int:
        return int(self.index["teacher"]["embed_dim"])

    @property
    def has_image_tower(self) -> bool:
        return bool(self.index["teacher"]["image"])

    @property
    def has_text_tower(self) -> bool:
        return bool(self.index["teacher"]["text"])

    @property
    def views(self) -> int:
        return self.augmentation.views

    @property
    def dataset_size(self) -> int:
        return int(self.index["dataset"]["size"])

    def __len__(self) -> int:
        return int(self.index["samples"])

    def __contains__(self, key: str) -> bool:
        return key in self._key_rows()

    def __repr__(self) -> str:
        return (
            f"TeacherCache({str(self.folder)!r}, {len(self)} samples, {self.augmentation.describe()}, teacher {self.fingerprint})"
        )

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Read every shard now (checking its sha256 and plan) into one set of tensors and a key -> row map."""
        if self._rows is not None:
            return
        parts: dict[str, list[torch.Tensor]] = {}
        keys: list[str] = []
        for entry in self.index["shards"]:
            path = layout.shard_file_inside(self.folder, entry["file"], self.folder / layout.INDEX_FILE)
            if not path.is_file():
                raise CompressError(f"{path}: missing; the teacher cache is incomplete")
            if file_sha256(path) != entry["sha256"]:
                raise CompressError(f"{path}: sha256 differs from {layout.INDEX_FILE}; the shard was changed or damaged")
            meta = self._read_shard(path, parts)
            keys.extend(meta)
        try:
            self._tensors = {name: torch.cat(chunks) for name, chunks in parts.items()}
        except RuntimeError as exc:
            raise CompressError(f"{self.folder}: the shards' tensors do not fit together ({_first_line(exc)})") from None
        self._check_tensors(len(keys))
        self._rows = {key: row for row, key in enumerate(keys) if key}

    def _read_shard(self, path: Path, parts: dict[str, list[torch.Tensor]]) -> list[str]:
        """Append the shard's tensors to `parts`; its sample keys ("" for a skipped sample)."""
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("plan") != self.index["plan_digest"]:
                    raise CompressError(f"{path}: belongs to another cache plan than {self.folder / layout.INDEX_FILE}")
                for name in f.keys():
                    parts.setdefault(name, []).append(f.get_tensor(name))
            keys = json.loads(meta.get("keys", ""))
        except CompressError:
            raise
        except Exception as exc:  # safetensors' own errors for a damaged file; bad JSON in the metadata
            raise CompressError(f"{path}: not a readable teacher cache shard ({_first_line(exc)})") from None
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise CompressError(f"{path}: its metadata holds no list of sample keys")
        return keys

    def _check_tensors(self, rows: int) -> None:
        """The index's teacher towers, width and views match the tensors the shards hold."""
        index_file = self.folder / layout.INDEX_FILE
        wanted = {
            "image": (rows, self.views, self.embed_dim) if self.has_image_tower else None,
            "text": (rows, self.embed_dim) if self.has_text_tower else None,
        }
        for name, shape in wanted.items():
            if shape is not None and (name not in self._tensors or tuple(self._tensors[name].shape) != shape):
                found = tuple(self._tensors[name].shape) if name in self._tensors else "none"
                raise CompressError(f"{index_file}: promises {name} embeddings of shape {list(shape)}; the shards hold {found}")

    def _key_rows(self) -> dict[str, int]:
        self.load()
        return self._rows

    def keys(self) -> list[str]:
        """The keys of every cached sample, in dataset order."""
        return list(self._key_rows())

    def row_of(self, key: str) -> int:
        rows = self._key_rows()
        if key not in rows:
            raise CompressError(
                f"{self.folder}: sample key {key!r} is not in the teacher cache ({len(rows)} samples "
                f"of dataset {self.dataset_digest[:12]})"
            )
        return rows[key]

    def embeddings(self, key: str, view: int = 0) -> dict[str, torch.Tensor | None]:
        """float32 teacher embeddings of one sample: {"image": [D] of view `view`, "text": [D]}."""
        row = self.row_of(key)
        self.check_view(view)
        return {
            "image": self._tensors["image"][row, view].float() if self.has_image_tower else None,
            "text": self._tensors["text"][row].float() if self.has_text_tower else None,
        }

    def gather(self, rows: Sequence[int], views: Sequence[int]) -> dict[str, torch.Tensor | None]:
        """float32 embeddings of many (row, view) pairs: {"image": [N, D] | None, "text": [N, D] | None}."""
        self.load()
        rows_t = torch.tensor(list(rows), dtype=torch.long)
        image = text = None
        if self.has_image_tower:
            image = self._tensors["image"][rows_t, torch.tensor(list(views), dtype=torch.long)].float()
        if self.has_text_tower:
            text = self._tensors["text"][rows_t].float()
        return {"image": image, "text": text}

    def view_params(self, key: str, view: int) -> ViewParams | None:
        """The stored augmentation of view `view` of sample `key` (None when the cache is not augmented)."""
        row = self.row_of(key)
        self.check_view(view)
        if not self.augmentation.enabled:
            return None
        return params_from_tensors(self._tensors, row, view)

    def check_view(self, view: int) -> None:
        """Raise `CompressError` unless the cache stores a view numbered `view`."""
        if not 0 <= view < self.views:
            raise CompressError(f"{self.folder}: view {view} asked for, the cache stores {self.views} view(s) per sample")

    # ------------------------------------------------------------------ matching a training run

    def check(
        self, dataset, teacher_fingerprint: str | None = None, augmentation: str | dict | Augmentation | None = None
    ) -> None:
        """Raise `CompressError` unless this cache was built for `dataset` (and the given teacher and augmentation)."""
        base = dataset.dataset if isinstance(dataset, CachedViewDataset) else dataset
        if isinstance(dataset, CachedViewDataset) and dataset.cache.index["plan_digest"] != self.index["plan_digest"]:
            raise CompressError(f"{self.folder}: the CachedViewDataset replays views of another cache ({dataset.cache.folder})")
        if teacher_fingerprint is not None and teacher_fingerprint != self.fingerprint:
            raise CompressError(
                f"{self.folder}: built by teacher {self.fingerprint}, not by the given teacher {teacher_fingerprint}"
            )
        self.check_data(base)
        if augmentation is not None:
            wanted = make_augmentation(augmentation)
            if wanted != self.augmentation:
                stored, asked = self.augmentation.to_dict(), wanted.to_dict()
                differ = "; ".join(f"{k} {stored[k]!r} here, {asked[k]!r} asked for" for k in stored if stored[k] != asked[k])
                raise CompressError(f"{self.folder}: augmentation settings differ ({differ})")
        if self.augmentation.enabled and not isinstance(dataset, CachedViewDataset):
            raise CompressError(
                f"{self.folder}: stores augmented views ({self.augmentation.describe()}); train on "
                "CachedViewDataset(data, cache) so the student sees the views the teacher saw"
            )

    def check_data(self, dataset) -> None:
        """Raise `CompressError` unless `dataset` has the digest and size this cache was built over."""
        digest = getattr(dataset, "digest", None)
        if not callable(digest):
            raise CompressError(f"{type(dataset).__name__} has no digest(); the cache cannot check that it holds this data")
        actual = str(digest())
        if actual != self.dataset_digest:
            raise CompressError(
                f"{self.folder}: built for dataset digest {self.dataset_digest[:12]}..., "
                f"the given data has digest {actual[:12]}... (the data changed, or it is other data)"
            )
        if len(dataset) != self.dataset_size:
            raise CompressError(f"{self.folder}: built for {self.dataset_size} samples, the given data has {len(dataset)}")

    def targets_for(
        self, dataset, teacher_fingerprint: str | None = None, augmentation: str | dict | Augmentation | None = None
    ) -> CacheTargets:
        """A `targets(samples)` callable for `Distiller(..., targets=...)`, after `check`ing the match."""
        self.check(dataset, teacher_fingerprint=teacher_fingerprint, augmentation=augmentation)
        self.load()
        return CacheTargets(self)

    def teacher(self) -> CachedTeacher:
        """A stand-in for the teacher (name, fingerprint, width, towers) for training from the cache alone."""
        return CachedTeacher(self)


class CacheTargets:
    """`targets(samples) -> {"image": [N, D] | None, "text": [N, D] | None}`, float32, looked up by `Sample.key`.

    A key "<key>#v<view>" (from `CachedViewDataset`) selects that stored view; a plain key selects the
    only view of an unaugmented cache and is refused for an augmented one.
    """

    def __init__(self, cache: TeacherCache):
        self.cache = cache

    def locate(self, key: str) -> tuple[int, int]:
        """(row, view) of a sample key."""
        cache = self.cache
        match = VIEW_SUFFIX.match(key)
        if match and match["key"] in cache:
            view = int(match["view"])
            cache.check_view(view)
            return cache.row_of(match["key"]), view
        if key in cache and cache.augmentation.enabled:
            raise CompressError(
                f"{cache.folder}: sample {key!r} has no view id, but the cache stores "
                f"{cache.augmentation.describe()} views; train on CachedViewDataset(data, cache)"
            )
        return cache.row_of(key), 0

    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor | None]:
        if not samples:
            raise CompressError("an empty batch has no teacher targets")
        located = [self.locate(sample.key) for sample in samples]
        return self.cache.gather([row for row, _ in located], [view for _, view in located])


class CachedViewDataset(Dataset):
    """`dataset` replayed through the cache's stored views: len = samples x views, item j = view j // N of sample j % N.

    Each sample's image is the stored augmented view (the image itself for an unaugmented cache) and
    its key is "<key>#v<view>". `view=v` keeps one view only (len = samples). Everything else
    (`skipped`, `skip_log`, `captions`, ...) is the wrapped dataset's.
    """

    def __init__(self, dataset, cache: TeacherCache | str | Path, view: int | None = None):
        self.dataset = dataset
        self.cache = cache if isinstance(cache, TeacherCache) else TeacherCache(cache)
        self.cache.check_data(dataset)
        self.cache.load()
        if view is not None:
            self.cache.check_view(view)
        self.view = view
        self._n = len(dataset)

    def __len__(self) -> int:
        return self._n * (1 if self.view is not None else self.cache.views)

    def __getitem__(self, index: int) -> Sample | None:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} cached views")
        base, view = (index, self.view) if self.view is not None else (index % self._n, index // self._n)
        sample = self.dataset[base]
        if sample is None:
            return None
        params = self.cache.view_params(sample.key, view)
        return Sample(
            image=apply_augmentation(sample.image, params),
            caption=sample.caption,
            lang=sample.lang,
            key=view_key(sample.key, view),
        )

    def captions(self) -> list[tuple[str, str]]:
        pairs = self.dataset.captions()
        return pairs if self.view is not None else pairs * self.cache.views

    def digest(self) -> str:
        """The wrapped data's digest: what the cache was built over."""
        return self.dataset.digest()

    def __getattr__(self, name: str) -> Any:
        # Skip counters, skip logs, locations: the wrapped dataset's (only reached for missing attributes).
        if name in ("dataset", "cache", "view", "_n"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        which = "all views" if self.view is None else f"view {self.view}"
        return f"CachedViewDataset({self.dataset!r}, {which} of {self.cache!r})"


class CachedTeacher:
    """The facts of the teacher a cache was built with; it cannot embed anything new.

    Enough for `Distiller(cache.teacher(), student, data=..., targets=cache.targets_for(...))` to
    train without loading the teacher's weights at all.
    """

    def __init__(self, cache: TeacherCache):
        self.cache = cache
        self.name = cache.index["teacher"]["name"]
        self.fingerprint = cache.fingerprint
        self.embed_dim = cache.embed_dim
        self.languages: tuple[str, ...] = ()

    @property
    def has_image_tower(self) -> bool:
        return self.cache.has_image_tower

    @property
    def has_text_tower(self) -> bool:
        return self.cache.has_text_tower

    def encode_images(self, images):
        raise CompressError(
            f"teacher {self.fingerprint} is only present as its cache {self.cache.folder}; load the teacher to embed new images"
        )

    def encode_texts(self, texts, lang):
        raise CompressError(
            f"teacher {self.fingerprint} is only present as its cache {self.cache.folder}; load the teacher to embed new texts"
        )

    def __repr__(self) -> str:
        return f"CachedTeacher({self.fingerprint!r} from {str(self.cache.folder)!r})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
