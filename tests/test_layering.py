"""The package's layering, read from the source: the demo world stays at the edge and no folders import each other in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("compress", "students", "teachers", "targets")

# The edge: the demo world itself, the demo teacher plugin, and recipes (readable end-to-end scripts).
MAY_IMPORT_DEMO_WORLD = ("compress.demo_world", "teachers.demo", "teachers.demo_train", "compress.recipes")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()
FACADE = "compress"


def imported_modules(name: str, path: Path) -> set[str]:
    """Every first-party module `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
            found |= submodules
            if len(submodules) < len(node.names):  # names defined in the package itself
                found.add(base)
    return {module for module in found if module.split(".")[0] in PACKAGES}


def folder_of(module: str) -> str:
    """compress.eval.runner -> compress.eval; compress.api -> compress.api (a module of the root); students.x -> students."""
    parts = module.split(".")
    if parts[0] != "compress":
        return parts[0]
    if len(parts) == 1:
        return "compress"
    return ".".join(parts[:2])


def folder_graph() -> dict[str, dict[str, set[str]]]:
    """folder -> imported folder -> the modules that import it.

    `compress/__init__.py` is left out: it is the public facade over every layer (`compress.load_teacher`,
    `compress.Distiller`, `compress.__version__`), not a layer of its own.
    """
    graph: dict[str, dict[str, set[str]]] = {}
    for name, path in MODULES.items():
        source = folder_of(name)
        for target in map(folder_of, imported_modules(name, path)):
            if target != source and FACADE not in (source, target):
                graph.setdefault(source, {}).setdefault(target, set()).add(name)
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one folder (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if node not in index:
            visit(node)
    return found


def test_only_the_edge_imports_the_demo_world():
    offenders = sorted(
        name
        for name, path in MODULES.items()
        if not name.startswith(MAY_IMPORT_DEMO_WORLD)
        and any(module.startswith("compress.demo_world") for module in imported_modules(name, path))
    )
    assert offenders == [], f"production modules reaching into compress.demo_world: {offenders}"


def test_the_framework_reaches_first_party_plugins_only_through_the_registry():
    """No compress module but a recipe imports a teacher, student family or target module."""
    offenders = sorted(
        (name, module)
        for name, path in MODULES.items()
        if name.startswith("compress") and not name.startswith("compress.recipes")
        for module in imported_modules(name, path)
        if module.split(".")[0] in ("students", "teachers", "targets")
    )
    assert offenders == []


def test_the_folder_import_graph_has_no_cycle():
    graph = folder_graph()
    loops = cycles(graph)
    detail = [{a: {b: sorted(graph[a][b]) for b in graph.get(a, {}) if b in loop} for a in loop} for loop in loops]
    assert loops == [], f"folders importing each other: {detail}"


def test_the_checks_see_the_imports_they_guard():
    """The walker itself: it finds lazy imports, relative imports and `from package import module`."""
    graph = folder_graph()
    assert "compress.data" in graph["compress.demo_world"]  # demo_world/dataset.py: from compress.data.sample import Sample
    assert "compress.eval" in graph["compress.bundle"]  # the bundle uses evaluation's class-name catalog
    assert "compress.registry" in graph["compress.data"]  # data/sources.py: from compress import registry
    assert "compress.demo_world" in graph["teachers"]
    assert "compress.bundle" in graph["compress.api"] and "compress.api" in graph["compress.distill"]
    assert cycles({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}}) == [["a", "b", "c"]]
