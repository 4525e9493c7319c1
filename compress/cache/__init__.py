"""Teacher caches: teacher embeddings computed once and reused by every later run (MobileCLIP's reinforced datasets).

    from compress.cache import build_cache, TeacherCache, CachedViewDataset, distiller_from_cache

    build_cache(teacher, data, "caches/demo", augmentation="crop-flip", views=4)  # resumable, sharded, per rank
    cache = TeacherCache("caches/demo")
    distiller_from_cache(cache, student, data, teacher=teacher).fit("distill")

A cache folder holds fp16 safetensors shards and a JSON index (`cache.json`) recording the teacher
fingerprint, the dataset digest and the augmentation settings; a run whose teacher, data or
augmentation differs is refused with a `CompressError`, never served silently. Augmented caches
store the parameters of every view, and `apply_augmentation` replays them, so the student trains
on the exact pixels the teacher embedded.
"""

import importlib

# Names resolve on first use, so the command line can read `compress.cache.presets` without torch.
_HOMES = {
    "AUGMENTATIONS": "presets",
    "Augmentation": "augment",
    "ViewParams": "augment",
    "apply_augmentation": "augment",
    "draw_view_params": "augment",
    "make_augmentation": "augment",
    "BuildResult": "build",
    "build_cache": "build",
    "finalize_cache": "build",
    "rank_from_env": "build",
    "CachedTeacher": "store",
    "CachedViewDataset": "store",
    "CacheTargets": "store",
    "TeacherCache": "store",
    "view_key": "store",
    "distiller_from_cache": "training",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "BuildResult",
    "CacheTargets",
    "CachedTeacher",
    "CachedViewDataset",
    "TeacherCache",
    "ViewParams",
    "apply_augmentation",
    "build_cache",
    "distiller_from_cache",
    "draw_view_params",
    "finalize_cache",
    "make_augmentation",
    "rank_from_env",
    "view_key",
]
