"""Reading a bundle: the manifest checked against its JSON Schema, every file checked against its sha256.

A bundle is refused, with a `BundleError` naming the file and the problem, when the manifest is
missing, not JSON, of another format or schema version, or not valid against
`manifest.schema.json`; when a path in it (or in golden.json) is absolute, climbs out with `..`,
holds a backslash or resolves outside the folder; when a listed file is missing or its size or
sha256 differs; when a file is present but not listed, or is a symbolic link; when the manifest
points at a file it does not list; or when its `embedding_space` does not match its image models.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from compress.bundle.layout import FORMAT, GOLDEN_FORMAT, GOLDEN_VERSION, MANIFEST, SCHEMA_VERSION
from compress.bundle.manifest import embedding_space
from compress.errors import CompressError
from compress.files import file_sha256

SCHEMA_FILE = "manifest.schema.json"


class BundleError(CompressError):
    """A bundle that cannot be trusted or used; the message names the file and the problem."""


@cache
def manifest_schema() -> dict:
    """The JSON Schema every manifest.json is validated against (shipped in compress.bundle)."""
    return json.loads((resources.files("compress.bundle") / SCHEMA_FILE).read_text(encoding="utf-8"))


def validate_manifest(manifest: dict, source: str = MANIFEST) -> None:
    """Raise `BundleError` naming the first schema violation (its place in the manifest and why)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifest_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise BundleError(f"{source}: invalid manifest at {where}: {error.message}")


def list_files(folder: Path) -> list[str]:
    """Every regular file under `folder` (inside .mlpackage folders too), '/'-separated, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def file_entries(folder: Path, exclude: tuple[str, ...] = (MANIFEST,)) -> list[dict]:
    """{path, sha256, bytes} for every file in the folder except `exclude`."""
    return [
        {"path": rel, "sha256": file_sha256(folder / rel), "bytes": (folder / rel).stat().st_size}
        for rel in list_files(folder)
        if rel not in exclude
    ]


def manifest_paths(manifest: dict) -> list[tuple[str, str]]:
    """(field, path) for every path the manifest holds, read defensively (before schema validation)."""

    def rows(key):
        value = manifest.get(key)
        return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []

    text = manifest.get("text") if isinstance(manifest.get("text"), dict) else {}
    found = [(f"files[{i}].path", row.get("path")) for i, row in enumerate(rows("files"))]
    found += [(f"text.{key}", text.get(key)) for key in ("tokenizer", "tokenizer_json")]
    found += [(f"models[{i}].file", row.get("file")) for i, row in enumerate(rows("models"))]
    found += [(f"labels[{i}].file", row.get("file")) for i, row in enumerate(rows("labels"))]
    found += [(key, manifest.get(key)) for key in ("golden", "report")]
    return [(where, path) for where, path in found if isinstance(path, str)]


def golden_paths(golden: dict) -> list[tuple[str, str]]:
    """(field, path) for every file golden.json names."""
    images = golden.get("images") if isinstance(golden.get("images"), list) else []
    return [
        (f"images[{i}].{key}", image[key])
        for i, image in enumerate(images)
        if isinstance(image, dict)
        for key in ("file", "pixels")
        if isinstance(image.get(key), str)
    ]


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_inside(folder: Path, relative: str, where: str, source: str) -> None:
    """Refuse a path that is absolute, climbs with `..`, holds a backslash or resolves outside `folder`."""
    if not relative:
        problem = "is empty"
    elif relative.startswith("/") or _DRIVE.match(relative):
        problem = "is absolute"
    elif "\\" in relative:
        problem = "holds a backslash"
    elif ".." in relative.split("/"):
        problem = "climbs out of the bundle with '..'"
    else:
        root = folder.resolve()
        resolved = (folder / relative).resolve()
        if resolved != root and root not in resolved.parents:
            problem = f"resolves outside the bundle folder (to {resolved})"
        else:
            return
    raise BundleError(f"{source}: {where} {relative!r} {problem}; a bundle path stays inside its folder")


def _referenced_files(manifest: dict) -> list[tuple[str, str]]:
    """(what, path) for each file the manifest refers to outside its file list."""
    refs = [("tokenizer", manifest["text"]["tokenizer"]), ("tokenizer.json", manifest["text"]["tokenizer_json"])]
    refs += [(f"{m['target']} {m['tower']} {m['precision']} model", m["file"]) for m in manifest["models"]]
    refs += [(f"label set {entry['set']} ({entry['lang']})", entry["file"]) for entry in manifest["labels"]]
    refs += [(key, manifest[key]) for key in ("golden", "report") if key in manifest]
    return refs


@dataclass
class Bundle:
    """A verified bundle folder and its manifest."""

    folder: Path
    manifest: dict

    def path(self, relative: str) -> Path:
        return self.folder / relative

    def models(self, target: str | None = None, tower: str | None = None) -> list[dict]:
        return [
            m
            for m in self.manifest["models"]
            if (target is None or m["target"] == target) and (tower is None or m["tower"] == tower)
        ]

    def model(self, target: str, tower: str, precision: str) -> dict:
        for entry in self.models(target, tower):
            if entry["precision"] == precision:
                return entry
        have = ", ".join(sorted({m["precision"] for m in self.models(target, tower)})) or "none"
        raise BundleError(f"{self.folder}: no {target} {tower} model in {precision}; the bundle has: {have}")

    def label_sets(self) -> list[dict]:
        return list(self.manifest["labels"])

    def labels(self, name: str, lang: str) -> dict:
        """The parsed `labels/<set>.<lang>.json`."""
        for entry in self.manifest["labels"]:
            if entry["set"] == name and entry["lang"] == lang:
                return json.loads(self.path(entry["file"]).read_text(encoding="utf-8"))
        have = ", ".join(f"{e['set']} ({e['lang']})" for e in self.manifest["labels"]) or "none"
        raise BundleError(f"{self.folder}: no label set {name!r} in {lang!r}; the bundle has: {have}")


def load_bundle(folder: str | Path, verify: bool = True) -> Bundle:
    """Open a bundle; with `verify` (the default) every file's size and sha256 are checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such bundle folder")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{folder}: not a bundle (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: not a {FORMAT} manifest")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(
            f"{manifest_path}: schema_version {manifest.get('schema_version')!r} is not supported "
            f"(this compress reads {SCHEMA_VERSION})"
        )
    for where, rel in manifest_paths(manifest):
        check_inside(folder, rel, where, str(manifest_path))
    validate_manifest(manifest, str(manifest_path))
    listed = {entry["path"]: entry for entry in manifest["files"]}
    if len(listed) != len(manifest["files"]):
        raise BundleError(f"{manifest_path}: a file is listed twice")
    for what, rel in _referenced_files(manifest):
        if rel not in listed and not any(p.startswith(rel.rstrip("/") + "/") for p in listed):
            raise BundleError(f"{manifest_path}: the {what} {rel} is not in the file list")
    if manifest["embedding_space"] != embedding_space(manifest):
        raise BundleError(f"{manifest_path}: embedding_space does not match the image models and image rule it lists")
    if verify:
        verify_files(folder, listed)
    if "golden" in manifest:
        _check_golden_paths(folder, manifest["golden"], listed)
    return Bundle(folder=folder, manifest=manifest)


def _check_golden_paths(folder: Path, rel: str, listed: dict[str, dict]) -> None:
    path = folder / rel
    try:
        golden = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: unreadable golden file ({exc})") from None
    if not isinstance(golden, dict) or golden.get("format") != GOLDEN_FORMAT or golden.get("version") != GOLDEN_VERSION:
        raise BundleError(f"{path}: not a {GOLDEN_FORMAT} file of version {GOLDEN_VERSION}")
    for where, file in golden_paths(golden):
        check_inside(folder, file, where, str(path))
        if file not in listed:
            raise BundleError(f"{path}: {where} {file} is not in the file list of {MANIFEST}")


def verify_files(folder: Path, listed: dict[str, dict]) -> None:
    present = set(list_files(folder)) - {MANIFEST}
    links = sorted(rel for rel in present if (folder / rel).is_symlink())
    if links:
        raise BundleError(f"{folder / links[0]}: a symbolic link; a bundle holds plain files only")
    for rel, entry in sorted(listed.items()):
        path = folder / rel
        if rel not in present:
            raise BundleError(f"{path}: missing (listed in {MANIFEST})")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise BundleError(f"{path}: altered ({size} bytes, {MANIFEST} says {entry['bytes']})")
        if file_sha256(path) != entry["sha256"]:
            raise BundleError(f"{path}: altered (sha256 differs from {MANIFEST})")
    extra = sorted(present - set(listed))
    if extra:
        raise BundleError(
            f"{folder / extra[0]}: unknown file, not listed in {MANIFEST}"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
        )
