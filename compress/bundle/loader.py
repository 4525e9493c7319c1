"""Reading a bundle: the manifest checked against its JSON Schema, every file checked against its sha256.

A bundle is refused, with a `BundleError` naming the file and the problem, when the manifest is
missing, not JSON or not valid against `manifest.schema.json`; when a listed file is missing or
its size or sha256 differs; when a file is present but not listed; or when the manifest points at
a file it does not list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from compress.errors import CompressError
from compress.files import file_sha256

MANIFEST = "manifest.json"
SCHEMA_FILE = "manifest.schema.json"
SCHEMA_VERSION = 1


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


def _referenced_files(manifest: dict) -> list[tuple[str, str]]:
    """(what, path) for each file the manifest refers to outside its file list."""
    refs = [("tokenizer", manifest["text"]["tokenizer"])]
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
            m for m in self.manifest["models"]
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
    if isinstance(manifest, dict) and manifest.get("schema_version") not in (None, SCHEMA_VERSION):
        raise BundleError(
            f"{manifest_path}: schema_version {manifest.get('schema_version')!r} is not supported (this compress reads {SCHEMA_VERSION})"
        )
    validate_manifest(manifest, str(manifest_path))
    listed = {entry["path"]: entry for entry in manifest["files"]}
    if len(listed) != len(manifest["files"]):
        raise BundleError(f"{manifest_path}: a file is listed twice")
    for what, rel in _referenced_files(manifest):
        if rel not in listed and not any(p.startswith(rel.rstrip("/") + "/") for p in listed):
            raise BundleError(f"{manifest_path}: the {what} {rel} is not in the file list")
    if verify:
        verify_files(folder, listed)
    return Bundle(folder=folder, manifest=manifest)


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
        raise BundleError(f"{folder / extra[0]}: unknown file, not listed in {MANIFEST}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
