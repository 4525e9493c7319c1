"""Where a teacher checkpoint comes from (a local folder or a Hugging Face hub id), and load failures.

A location that names an existing folder is read from disk; one that looks like a path but does not
exist is an error (it is never sent to the hub); anything else ("org/name") is a hub id, fetched
into the compress cache or read from it. Loading failures of any library surface as one
`CompressError` line that names what was tried and how to point the teacher at a local folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from compress.errors import CompressError
from compress.paths import cache_dir


@dataclass(frozen=True)
class Source:
    """One checkpoint location, resolved."""

    plugin: str
    location: str  # a folder path (absolute) or a hub id
    is_local: bool

    @property
    def model_id(self) -> str:
        """The hub id, or the folder's name for a local checkpoint (moving the folder keeps the id)."""
        return Path(self.location).name if self.is_local else self.location

    def describe(self) -> str:
        return f"folder {self.location}" if self.is_local else repr(self.location)


def looks_like_path(location: str) -> bool:
    """True for locations that can only be folders: absolute, ./ ../ ~ prefixed, or more than one '/'."""
    return (
        Path(location).is_absolute()
        or location.startswith(("./", "../", "~", ".\\", "..\\"))
        or location in (".", "..")
        or location.count("/") > 1
        or "\\" in location
    )


def resolve_source(plugin: str, location: str | Path | None, default: str) -> Source:
    """A `Source` for `location` (the plugin's default hub id when it is empty)."""
    text = str(location) if location else default
    folder = Path(text).expanduser()
    if folder.is_dir():
        return Source(plugin, str(folder.resolve()), is_local=True)
    if folder.exists():
        raise CompressError(f"{plugin} teacher: {text} is a file; give the checkpoint folder that holds it")
    if looks_like_path(text):
        raise CompressError(f"{plugin} teacher: no such folder {text}")
    return Source(plugin, text, is_local=False)


def hub_cache_dir() -> str:
    """Where hub downloads of teacher checkpoints go: <compress cache>/hub."""
    return str(cache_dir() / "hub")


def _first_line(exc: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_failure(source: Source, exc: BaseException) -> CompressError:
    """One line: what could not be loaded, the library's reason, and how to load it from a folder."""
    cause = f"{type(exc).__name__}: {_first_line(exc)}"
    if source.is_local:
        return CompressError(f"could not load {source.plugin} teacher from folder {source.location} ({cause})")
    return CompressError(
        f"could not load {source.plugin} teacher {source.location!r} (no network or not cached? {cause}); "
        f"download it elsewhere and pass --teacher {source.plugin}:/path/to/folder"
    )


@contextmanager
def loading(source: Source) -> Iterator[None]:
    """Turn any library error raised while loading `source` into one clear `CompressError`."""
    try:
        yield
    except CompressError:
        raise
    except Exception as exc:  # the libraries raise OSError, ValueError, RuntimeError, KeyError, hub errors...
        raise load_failure(source, exc) from exc
