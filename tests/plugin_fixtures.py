"""Third-party plugins for the tests, installed the way pip leaves a distribution in site-packages."""

from __future__ import annotations

from pathlib import Path


def install_distribution(
    site: Path,
    distribution: str,
    module: str,
    source: str,
    group: str,
    entries: dict[str, str],
    version: str = "1.0",
    package: bool = False,
) -> Path:
    """Write `module` (a `module.py`, or `module/__init__.py` with `package`) and its
    `<module>-<version>.dist-info` (METADATA, entry_points.txt for `group`, RECORD) into `site`.

    `importlib.metadata` finds the distribution once `site` is on `sys.path`; `entries` maps each
    entry-point name to an attribute of the module. Returns `site`.
    """
    site.mkdir(parents=True, exist_ok=True)
    if package:
        (site / module).mkdir()
        (site / module / "__init__.py").write_text(source, encoding="utf-8")
    else:
        (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n", encoding="utf-8")
    lines = "".join(f"{name} = {module}:{attribute}\n" for name, attribute in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return site
