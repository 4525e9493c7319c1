"""Running the Android app's pure-Kotlin core (examples/android/core) on this machine's JVM.

`examples/android/core/jvm-test.sh` installs kotlinc and the JUnit/Gson jars, compiles the core
and its tests once per source hash, and runs JUnit. Where a JDK is missing and cannot be
installed the tests skip with that reason, except under `CI=true`, where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "android" / "core" / "jvm-test.sh"
TOOL = "dev.compress.core.tools.PrepareInputs"


def _run_script(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def core_classpath() -> str:
    """The compiled core's classpath, installing and compiling what is missing (a skip outside CI when impossible)."""
    install = _run_script("install")
    if install.returncode != 0:
        pytest.fail(f"jvm-test.sh install failed:\n{install.stderr}")
    built = _run_script("classpath")
    if built.returncode == 3:  # a tool is still missing: install explained why on stderr
        reason = (install.stderr + built.stderr).strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Kotlin core cannot be built under CI: {reason}")
        pytest.skip(f"no JVM toolchain for the Kotlin core: {reason}")
    if built.returncode != 0:
        pytest.fail(f"compiling examples/android/core failed:\n{built.stderr}")
    return built.stdout.strip().splitlines()[-1]


def run_junit(bundle: Path) -> subprocess.CompletedProcess:
    core_classpath()
    return _run_script("test", str(bundle))


def run_tool(classpath: str, mode: str, bundle: Path, request: dict, folder: Path, out: Path) -> None:
    """Run `PrepareInputs <mode>` on a request written to `folder/request.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    request_path = folder / f"{mode}-request.json"
    request_path.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        ["java", "-cp", classpath, TOOL, mode, str(bundle), str(request_path), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"PrepareInputs {mode} failed:\n{done.stderr}"


def prepared_inputs(out: Path, max_length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids [N, L] int64, pixels [M, 3, S, S] float32) written by `PrepareInputs prepare`."""
    ids = np.fromfile(out / "ids.i64", dtype="<i8").reshape(-1, max_length)
    pixels = np.fromfile(out / "pixels.f32", dtype="<f4").reshape(-1, 3, size, size)
    return ids, pixels
