"""Export targets by name, through the plugin registry (`compress.targets` entry points)."""

from __future__ import annotations

from compress import registry
from compress.errors import CompressError
from compress.protocols import Target

REQUIRED = ("name", "suffix", "precisions", "export_tower")


def load_target(name: str) -> Target:
    """An instance of the target registered as `name`; an unknown name lists the registered ones."""
    factory = registry.get("targets", name)
    try:
        target = factory()
    except Exception as exc:  # a third-party plugin failing to build must say which one
        raise CompressError(f"export target {name!r} ({factory!r}) failed to start: {type(exc).__name__}: {exc}") from exc
    missing = [attr for attr in REQUIRED if not hasattr(target, attr)]
    if missing:
        raise CompressError(
            f"export target {name!r} ({type(target).__name__}) lacks {', '.join(missing)} "
            "(see the Target protocol in compress/protocols.py)"
        )
    if target.name != name:
        raise CompressError(f"export target registered as {name!r} calls itself {target.name!r}; the names must agree")
    return target


def needs_calibration(target: Target, precision: str) -> bool:
    """Whether the target's `precision` needs calibration inputs (the protocol's optional `needs_calibration`)."""
    needs = getattr(target, "needs_calibration", None)
    return bool(needs(precision)) if callable(needs) else False


def runner(target: Target, path):
    """`target.load(path)` when the target can run its files here, else None."""
    load = getattr(target, "load", None)
    return load(path) if callable(load) else None
