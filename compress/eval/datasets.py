"""Zero-shot classification sets: the ELEVATER layout, ImageFolder trees, and in-memory images.

ELEVATER as Chinese-CLIP distributes it::

    cifar-10/
      label.txt       English class names, line i is class i
      label_cn.txt    Chinese class names
      test/0/*.png    class folders named by class id, zero-padded or not (0, 007, 099)

An ImageFolder tree is `root/<class folder>/<images>`, classes in sorted folder order, named by
`classnames.<lang>.txt` in the root, by the shipped names when the root is named after a known
dataset with the same class count, or else by the folder names themselves.

Class names for a language come from, in order: the caller's files, the dataset folder's own
files (label.txt / label_cn.txt, or classnames.<lang>.txt), the shipped catalog. Templates
likewise: the caller's files, the folder's templates.<lang>.txt, the catalog, CLIP's generic
prompts. Unreadable images are skipped and counted when the set is evaluated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from compress.errors import BadSampleError, CompressError
from compress.eval import catalog
from compress.eval.metrics import PRIMARY_METRICS, TOP1

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
ELEVATER_LABEL_FILES = {"en": "label.txt", "zh": "label_cn.txt"}
SPLITS = ("test", "val", "valid", "train")


@dataclass
class ClassificationSet:
    """Images (PIL images or file paths) with class ids, and class names and templates per language.

    `name_sources[lang]` says where each language's class names came from, for the report.
    """

    name: str
    items: list[Any]
    labels: list[int]
    classnames: dict[str, list[str]]
    templates: dict[str, list[str]]
    primary_metric: str = TOP1
    source: str = "memory"
    name_sources: dict[str, str] = field(default_factory=dict)
    ignored_files: int = 0

    def __post_init__(self) -> None:
        if not self.classnames:
            raise CompressError(f"{self.source}: no class names for dataset {self.name!r}")
        counts = {lang: len(names) for lang, names in self.classnames.items()}
        if len(set(counts.values())) != 1:
            detail = ", ".join(f"{lang}: {n}" for lang, n in counts.items())
            raise CompressError(f"{self.source}: class name lists differ in length ({detail})")
        if len(self.items) != len(self.labels):
            raise CompressError(f"{self.source}: {len(self.items)} images but {len(self.labels)} labels")
        if not self.items:
            raise CompressError(f"{self.source}: dataset {self.name!r} has no images")
        out_of_range = [label for label in self.labels if not 0 <= label < self.num_classes]
        if out_of_range:
            raise CompressError(f"{self.source}: label {out_of_range[0]} is outside the {self.num_classes} class names")
        for lang in self.classnames:
            templates = self.templates.get(lang) or list(catalog.DEFAULT_TEMPLATES.get(lang, catalog.DEFAULT_TEMPLATES["en"]))
            self.templates[lang] = catalog.check_templates(list(templates), f"{self.name} templates ({lang})")
        if self.primary_metric not in PRIMARY_METRICS:
            raise CompressError(f"{self.name}: unknown primary metric {self.primary_metric!r}")

    @property
    def num_classes(self) -> int:
        return len(next(iter(self.classnames.values())))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.classnames)

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, limit: int | None) -> ClassificationSet:
        """At most `limit` images, taken round-robin over classes so every class keeps some."""
        if limit is None or limit >= len(self.items):
            return self
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(self.labels):
            by_class.setdefault(label, []).append(index)
        queues = [iter(by_class[c]) for c in sorted(by_class)]
        chosen: list[int] = []
        while len(chosen) < limit and queues:
            alive = []
            for queue in queues:
                index = next(queue, None)
                if index is not None and len(chosen) < limit:
                    chosen.append(index)
                    alive.append(queue)
            queues = alive
        chosen.sort()
        return ClassificationSet(
            self.name,
            [self.items[i] for i in chosen],
            [self.labels[i] for i in chosen],
            self.classnames,
            self.templates,
            self.primary_metric,
            self.source,
            self.name_sources,
            self.ignored_files,
        )

    @classmethod
    def from_memory(
        cls,
        name: str,
        images: Sequence[Any],
        labels: Sequence[int],
        classnames: Mapping[str, Sequence[str]],
        templates: Mapping[str, Sequence[str]] | None = None,
        primary_metric: str = TOP1,
    ) -> ClassificationSet:
        """A set built from images already in memory (or paths), e.g. the demo world's tasks."""
        return cls(
            name=name,
            items=list(images),
            labels=[int(label) for label in labels],
            classnames={lang: list(names) for lang, names in classnames.items()},
            templates={lang: list(t) for lang, t in (templates or {}).items()},
            primary_metric=primary_metric,
            source=f"{name} (in memory)",
            name_sources={lang: "given" for lang in classnames},
        )

    @classmethod
    def from_task(cls, task: Any, images: Sequence[Any], labels: Sequence[int]) -> ClassificationSet:
        """A set from a task object with `.name`, `.classnames[lang]` and `.templates[lang]`."""
        return cls.from_memory(task.name, images, labels, task.classnames, task.templates)


def task_set(source: str, task: str, split: str = "test", count: int = 500, image_size: int | None = None) -> ClassificationSet:
    """A zero-shot task of a registered data source (e.g. the demo world's shape), its test images in memory.

    The set is named "<source>-<task>" ("demo-shape").
    """
    from compress.data.sources import get_source, zero_shot_task

    spec = zero_shot_task(source, task)
    options = {} if image_size is None else {"image_size": image_size}
    images, labels = spec.test_samples(count, split=split, **options)
    dataset = ClassificationSet.from_task(spec, images, labels)
    dataset.name = f"{source}-{spec.name}"
    dataset.source = f"{getattr(get_source(source), 'title', source)} {split} split"
    return dataset


def demo_task_set(task: str, split: str = "test", count: int = 500, image_size: int | None = None) -> ClassificationSet:
    """`task_set("demo", ...)`: a zero-shot task of the demo data source (shape, color, color_shape)."""
    return task_set("demo", task, split=split, count=count, image_size=image_size)


# --- opening datasets on disk ------------------------------------------------------------------


def open_classification(
    path: str | Path,
    *,
    name: str | None = None,
    split: str = "test",
    classnames: Mapping[str, str | Path] | None = None,
    templates: Mapping[str, str | Path] | None = None,
) -> ClassificationSet:
    """Open an ELEVATER dataset folder, one of its split folders, or an ImageFolder tree.

    `classnames` / `templates` map a language to a text file that overrides every other source.
    `name` names the dataset (default: the folder name); it also picks the shipped class names.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise CompressError(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise CompressError(f"{root}: a dataset is a folder (ELEVATER layout or ImageFolder), not a file")
    if _has_label_files(root):
        split_dir = root / split
        if not split_dir.is_dir():
            present = [s for s in SPLITS if (root / s).is_dir()]
            raise CompressError(
                f"{root}: ELEVATER dataset has no {split!r} split folder" + (f"; it has: {', '.join(present)}" if present else "")
            )
        return _open_elevater(root, split_dir, name or root.name, classnames or {}, templates or {})
    if root.name in SPLITS and _has_label_files(root.parent):
        return _open_elevater(root.parent, root, name or root.parent.name, classnames or {}, templates or {})
    return _open_image_folder(root, name or root.name, classnames or {}, templates or {})


def _has_label_files(folder: Path) -> bool:
    return any((folder / f).is_file() for f in ELEVATER_LABEL_FILES.values())


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _scan_images(folder: Path) -> tuple[list[Path], int]:
    """Image files under `folder` (recursively, sorted) and the count of other files skipped."""
    images, others = [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if _is_image(path):
                images.append(path)
            else:
                others += 1
    return images, others


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _open_elevater(root, split_dir, name, user_names, user_templates) -> ClassificationSet:
    folder_files = {lang: root / name for lang, name in ELEVATER_LABEL_FILES.items() if (root / name).is_file()}
    for lang in catalog.LANGS:
        extra = root / f"classnames.{lang}.txt"
        if lang not in folder_files and extra.is_file():
            folder_files[lang] = extra
    num_classes = len(catalog.read_lines(next(iter(folder_files.values())), "class-name"))
    items, labels, ignored = [], [], 0
    for class_dir in _class_dirs(split_dir):
        try:
            class_id = int(class_dir.name)
        except ValueError:
            raise CompressError(
                f"{class_dir}: ELEVATER class folders are named by class id (0, 001, ...), not {class_dir.name!r}"
            ) from None
        if not 0 <= class_id < num_classes:
            raise CompressError(f"{class_dir}: class id {class_id} but the label files name {num_classes} classes")
        images, others = _scan_images(class_dir)
        items += images
        labels += [class_id] * len(images)
        ignored += others
    return _assemble(name, root, items, labels, num_classes, folder_files, user_names, user_templates, None, ignored)


def _open_image_folder(root, name, user_names, user_templates) -> ClassificationSet:
    class_dirs = _class_dirs(root)
    if class_dirs and all(d.name in SPLITS for d in class_dirs):
        raise CompressError(
            f"{root}: has {', '.join(d.name for d in class_dirs)} folders like an ELEVATER dataset, "
            "but no label.txt or label_cn.txt naming the classes"
        )
    if not class_dirs:
        raise CompressError(
            f"{root}: not a dataset: expected label.txt / label_cn.txt with a test/ folder (ELEVATER) "
            "or one sub-folder of images per class (ImageFolder)"
        )
    items, labels, ignored = [], [], 0
    for class_id, class_dir in enumerate(class_dirs):
        images, others = _scan_images(class_dir)
        items += images
        labels += [class_id] * len(images)
        ignored += others
    folder_files = {
        lang: root / f"classnames.{lang}.txt" for lang in catalog.LANGS if (root / f"classnames.{lang}.txt").is_file()
    }
    fallback = [d.name.replace("_", " ") for d in class_dirs]
    return _assemble(name, root, items, labels, len(class_dirs), folder_files, user_names, user_templates, fallback, ignored)


def _assemble(
    name, root, items, labels, num_classes, folder_files, user_names, user_templates, fallback, ignored
) -> ClassificationSet:
    """Pick each language's class names and templates: caller's file, folder file, catalog, fallback."""
    builtin = catalog.find_builtin(name)
    if builtin is not None and builtin.num_classes != num_classes:
        builtin = None  # a subset or a different labelling: its shipped names would be misaligned
    langs = list(dict.fromkeys([*catalog.LANGS, *user_names, *folder_files]))
    classnames: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for lang in langs:
        given = user_names.get(lang) or folder_files.get(lang)
        if given is not None:
            classnames[lang], sources[lang] = catalog.read_lines(given, "class-name"), str(given)
        elif builtin is not None and lang in catalog.LANGS:
            classnames[lang], sources[lang] = builtin.classnames(lang), f"shipped {builtin.name}"
        elif fallback is not None:
            classnames[lang], sources[lang] = list(fallback), "folder names"
        else:
            continue
        if len(classnames[lang]) != num_classes:
            raise CompressError(
                f"{sources[lang]}: {len(classnames[lang])} {lang} class names but {root} has {num_classes} classes"
            )
    templates: dict[str, list[str]] = {}
    for lang in classnames:
        if lang in user_templates:
            templates[lang] = catalog.read_lines(user_templates[lang], "template")
        elif (root / f"templates.{lang}.txt").is_file():
            templates[lang] = catalog.read_lines(root / f"templates.{lang}.txt", "template")
        elif builtin is not None and lang in catalog.LANGS:
            templates[lang] = builtin.templates(lang)
    if not items:
        raise CompressError(f"{root}: no image files found")
    return ClassificationSet(
        name=name,
        items=items,
        labels=labels,
        classnames=classnames,
        templates=templates,
        primary_metric=builtin.primary_metric if builtin is not None else TOP1,
        source=str(root),
        name_sources=sources,
        ignored_files=ignored,
    )


# --- loading images ------------------------------------------------------------------------------


def _pil_load_image(path: str | Path, source: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadSampleError(source, "unreadable image", f"{type(exc).__name__}: {exc}") from None


def _image_loader():
    """compress.data.images.load_image where installed (shared with training), else PIL."""
    try:
        from compress.data.images import load_image
    except ImportError as exc:
        if exc.name not in ("compress.data", "compress.data.images"):
            raise
        return _pil_load_image
    return load_image


def load_item(item: Any, loader=None) -> Image.Image:
    """An RGB PIL image from a PIL image or a path; raises BadSampleError for an unreadable file."""
    if isinstance(item, Image.Image):
        return item if item.mode == "RGB" else item.convert("RGB")
    return (loader or _image_loader())(item, str(item))


@dataclass
class SkippedImage:
    source: str
    reason: str


class ImageBatches:
    """Loads items in batches on a few threads; unreadable images are skipped and listed in `skipped`."""

    def __init__(self, items: Sequence[Any], batch_size: int = 64, workers: int | None = None):
        self.items = items
        self.batch_size = batch_size
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.skipped: list[SkippedImage] = []

    def __len__(self) -> int:
        return (len(self.items) + self.batch_size - 1) // self.batch_size

    def _load(self, index_and_item):
        index, item = index_and_item
        try:
            return index, load_item(item, self._loader), None
        except BadSampleError as exc:
            return index, None, SkippedImage(str(item), str(exc))

    def __iter__(self) -> Iterator[tuple[list[int], list[Image.Image]]]:
        """(indices into items, images) for each batch; failed items are absent from both."""
        self._loader = _image_loader()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(self.items), self.batch_size):
                chunk: Iterable = enumerate(self.items[start : start + self.batch_size], start=start)
                indices, images = [], []
                for index, image, skipped in pool.map(self._load, chunk):
                    if skipped is not None:
                        self.skipped.append(skipped)
                    else:
                        indices.append(index)
                        images.append(image)
                yield indices, images
