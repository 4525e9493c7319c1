"""No unsafe deserialisation in the shipped code: every file a user hands the tool (a checkpoint, a
cache, a bundle, a config) is read as data, never as code.

Refused: `torch.load` without `weights_only=True`; `pickle`, `dill`, `marshal` or `shelve`;
builtin `eval` / `exec`; `yaml.load` without a safe loader; `numpy.load(..., allow_pickle=True)`;
and `trust_remote_code=True` anywhere, as a default or in a call (it stays off unless a user sets it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("compress", "teachers", "students", "targets", "examples/python", "bench")
UNSAFE_MODULES = ("pickle", "cPickle", "dill", "marshal", "shelve")


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _safe_loader_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to PyYAML's safe loaders (e.g. `SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)`)."""
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and "SafeLoader" in ast.unparse(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _is_safe_loader(node: ast.AST | None, safe_names: set[str]) -> bool:
    if node is None:
        return False
    text = ast.unparse(node)
    return text in safe_names or text.split(".")[-1] in ("SafeLoader", "CSafeLoader")


def unsafe_uses(source: str, filename: str = "<source>") -> list[str]:
    """'file:line: what' for every unsafe deserialisation the source contains."""
    found = []
    tree = ast.parse(source, filename)
    safe_loaders = _safe_loader_names(tree)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{where}: imports from {node.module}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if name in ("eval", "exec"):
                found.append(f"{where}: calls {name}()")
            elif name == "torch.load" and not _is_true(keywords.get("weights_only")):
                found.append(f"{where}: torch.load without weights_only=True")
            elif name == "yaml.load" and not _is_safe_loader(keywords.get("Loader"), safe_loaders):
                found.append(f"{where}: yaml.load without a safe loader (use yaml.safe_load)")
            elif name in ("np.load", "numpy.load") and _is_true(keywords.get("allow_pickle")):
                found.append(f"{where}: numpy.load with allow_pickle=True")
            if _is_true(keywords.get("trust_remote_code")):
                found.append(f"{where}: trust_remote_code=True")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            positional = arguments.posonlyargs + arguments.args
            pairs = list(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults))
            pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None]
            found += [
                f"{where}: {node.name}() defaults trust_remote_code to True"
                for arg, default in pairs
                if arg.arg == "trust_remote_code" and _is_true(default)
            ]
        elif isinstance(node, ast.Dict):
            found += [
                f"{where}: trust_remote_code: True in a dict"
                for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and k.value == "trust_remote_code" and _is_true(v)
            ]
    return found


def _shipped_files() -> list[Path]:
    return sorted(p for folder in SHIPPED for p in (ROOT / folder).rglob("*.py"))


def test_the_shipped_code_deserialises_nothing_unsafely():
    files = _shipped_files()
    assert len(files) > 50, "the audit found too few files; did the layout change?"
    problems = [
        problem for path in files for problem in unsafe_uses(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not problems, "unsafe deserialisation:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nstate = torch.load(path)",
        "import torch\nstate = torch.load(path, weights_only=False)",
        "import pickle",
        "from pickle import loads",
        "import dill as d",
        "value = eval(text)",
        "exec(open(p).read())",
        "import yaml\nconfig = yaml.load(text, Loader=yaml.Loader)",
        "import yaml\nconfig = yaml.load(text)",
        "import yaml\nLOADER = yaml.UnsafeLoader\nconfig = yaml.load(text, Loader=LOADER)",
        "import numpy as np\na = np.load(p, allow_pickle=True)",
        "model = AutoModel.from_pretrained(p, trust_remote_code=True)",
        "def load(location, trust_remote_code=True):\n    pass",
        "def load(location, *, trust_remote_code: bool = True):\n    pass",
        "options = {'trust_remote_code': True}",
    ],
)
def test_the_audit_finds_each_unsafe_form(source):
    assert unsafe_uses(source), f"not caught: {source!r}"


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nstate = torch.load(path, map_location='cpu', weights_only=True)",
        "import yaml\nconfig = yaml.safe_load(text)",
        "import yaml\nconfig = yaml.load(text, Loader=yaml.CSafeLoader)",
        "import yaml\nSAFE = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\nconfig = yaml.load(text, Loader=SAFE)",
        "model.eval()",
        "def load(location, trust_remote_code=False):\n    pass",
        "options = {'trust_remote_code': bool(flag)}",
        "import numpy as np\na = np.load(p)",
    ],
)
def test_the_audit_accepts_safe_forms(source):
    assert unsafe_uses(source) == []
