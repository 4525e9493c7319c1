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

from compress.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)

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
