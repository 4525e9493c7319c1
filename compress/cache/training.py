"""A Distiller that reads its teacher targets from a cache: `distiller_from_cache`."""

from __future__ import annotations

from pathlib import Path

from compress.cache.augment import Augmentation
from compress.cache.store import CachedViewDataset, TeacherCache
from compress.errors import CompressError


def distiller_from_cache(
    cache: TeacherCache | str | Path,
    student,
    data,
    *,
    teacher=None,
    augmentation: str | dict | Augmentation | None = None,
    **options,
):
    """`Distiller(teacher, student, data=..., targets=...)` with targets from `cache`, checked against the run.

    `data` is the dataset the cache was built over (or a spec `open_data` reads). With an augmented
    cache the student trains on `CachedViewDataset(data, cache)`, one pass per epoch over every
    stored view. `teacher`, when given, must have the cache's fingerprint; without it the Distiller
    gets `cache.teacher()`, a stand-in, and the teacher's weights are never loaded.
    Other keyword options go to the Distiller.
    """
    from compress.api import open_data
    from compress.distill import Distiller

    cache = cache if isinstance(cache, TeacherCache) else TeacherCache(cache)
    dataset = open_data(data) if isinstance(data, (str, Path, dict, list, tuple)) else data
    train = CachedViewDataset(dataset, cache) if cache.augmentation.enabled else dataset
    fingerprint = getattr(teacher, "fingerprint", None) if teacher is not None else None
    if teacher is not None and fingerprint is None:
        raise CompressError(f"teacher {type(teacher).__name__} has no fingerprint to check against {cache.folder}")
    targets = cache.targets_for(train, teacher_fingerprint=fingerprint, augmentation=augmentation)
    return Distiller(teacher if teacher is not None else cache.teacher(), student, data=train, targets=targets, **options)
