"""Quiet output: the third-party lines seen on this stack are filtered where they start, native
stderr chatter is kept out of the console, and --verbose / COMPRESS_VERBOSE=1 shows everything."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from seen_output import SEEN_FRAGMENTS

from compress import quiet
from compress.cli import main

ROOT = Path(__file__).resolve().parents[1]
LEGACY = "Refer to https://importlib-resources.readthedocs.io/en/latest/using.html#migrating-from-legacy for migration advice."


class ExperimentalWarning(DeprecationWarning):
    """What ExecuTorch's own ExperimentalWarning is (a DeprecationWarning subclass)."""


# (category, module the warning is attributed to, text), as printed by the ExecuTorch export and runtime.
SEEN_WARNINGS = [
    (DeprecationWarning, "executorch.exir.dialects.edge._ops", f"read_text is deprecated. Use files() instead. {LEGACY}"),
    (DeprecationWarning, "importlib.resources._legacy", f"open_text is deprecated. Use files() instead. {LEGACY}"),
    (DeprecationWarning, "executorch.exir._serialize._flatbuffer", f"read_binary is deprecated. Use files() instead. {LEGACY}"),
    (
        ExperimentalWarning,
        "executorch.extension.pybindings.portable_lib",
        "This API is experimental and subject to change without notice.",
    ),
]

# (logger, message), as logged by coremltools on import and conversion, and by torch when torchao is imported.
SEEN_LOG_LINES = [
    (
        "coremltools",
        "scikit-learn version 1.9.1 is not supported. Minimum required version: 0.17. Maximum required version: 1.5.1. "
        "Disabling scikit-learn conversion API.",
    ),
    (
        "coremltools",
        "Torch version 2.14.1+cu130 has not been tested with coremltools. You may run into unexpected errors. "
        "Torch 2.7.0 is the most recent version that has been tested.",
    ),
    ("coremltools", "Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'"),
    ("coremltools", "Failed to load _MLNeuralEngineComputeDeviceProxy: No module named 'coremltools.libcoremlpython'"),
    ("coremltools", "Failed to load _MLModelAssetProxy: No module named 'coremltools.libcoremlpython'"),
    (
        "coremltools",
        "Core ML embedding (gather) layer does not support any inputs besides the weights and indices. "
        "Those given will be ignored.",
    ),
    (
        "torch.utils._pytree",
        "<enum 'KernelPreference'> is an Enum subclass and is now natively supported by torch.compile as an opaque "
        "value type. Calling register_constant() on Enum subclasses is deprecated and will be an error in a future release.",
    ),
    (
        "torch.utils._pytree",
        "<enum 'ScaleCalculationMode'> is an Enum subclass and is now natively supported by torch.compile as an opaque "
        "value type. Calling register_constant() on Enum subclasses is deprecated and will be an error in a future release.",
    ),
]


@pytest.fixture(autouse=True)
def no_verbose_variable(monkeypatch):
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)


def run_python(code: str, env_extra: dict | None = None, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in (quiet.VERBOSE_ENV, quiet.HF_PROGRESS_ENV)}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )


def shown(category, module: str, message: str, verbose: bool) -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet.installed(verbose=verbose):
            warnings.warn_explicit(message, category, "somewhere.py", 1, module=module, registry={})
    return any(str(w.message) == message for w in caught)


@pytest.mark.parametrize(("category", "module", "message"), SEEN_WARNINGS, ids=[m for _, m, _ in SEEN_WARNINGS])
def test_each_seen_warning_is_ignored_when_quiet_and_shown_when_verbose(category, module, message):
    assert not shown(category, module, message, verbose=False)
    assert shown(category, module, message, verbose=True)


def test_install_leaves_unrelated_warnings_alone():
    assert shown(UserWarning, "mypackage.models", "a user's own warning", verbose=False)
    assert shown(FutureWarning, "executorch.exir.program", "an ExecuTorch warning not in the table", verbose=False)
    # the same text from another package is not ExecuTorch's: the filter is by module, not by message alone
    text = f"read_text is deprecated. Use files() instead. {LEGACY}"
    assert shown(DeprecationWarning, "mypackage.resources", text, verbose=False)


def test_the_filters_go_when_the_block_ends():
    before = list(warnings.filters)
    with quiet.installed(verbose=False):
        assert len(warnings.filters) == len(before) + len(quiet.PYTHON_WARNINGS)
        assert quiet.is_quiet()
    assert warnings.filters == before
    assert not quiet.is_quiet()


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def logged(logger_name: str, message: str, verbose: bool) -> bool:
    logger, records = logging.getLogger(logger_name), Records()
    logger.addHandler(records)
    try:
        with quiet.installed(verbose=verbose):
            if message.startswith("<enum"):  # torch passes the enum as an argument
                enum, _, rest = message.partition(" ")
                logger.warning("%s " + rest, enum)
            else:
                logger.warning(message)
    finally:
        logger.removeHandler(records)
    return message in records.messages


@pytest.mark.parametrize(("logger", "message"), SEEN_LOG_LINES, ids=[f"{n}:{m[:30]}" for n, m in SEEN_LOG_LINES])
def test_each_seen_log_line_is_dropped_when_quiet_and_kept_when_verbose(logger, message):
    assert not logged(logger, message, verbose=False)
    assert logged(logger, message, verbose=True)


def test_other_records_of_the_same_loggers_pass():
    assert logged("coremltools", "Output 'embedding' was renamed", verbose=False)
    assert logged("torch.utils._pytree", "something else torch says", verbose=False)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["plugins"], {}, (True, False)),
        (["--verbose", "plugins"], {}, (False, True)),
        (["plugins"], {quiet.VERBOSE_ENV: "1"}, (False, True)),
        (["plugins"], {quiet.VERBOSE_ENV: "0"}, (True, False)),
    ],
    ids=["default", "--verbose", "COMPRESS_VERBOSE=1", "COMPRESS_VERBOSE=0"],
)
def test_the_command_line_runs_every_command_quiet_unless_asked(argv, env, expected, monkeypatch):
    seen = []
    monkeypatch.setattr("compress.commands.plugins.run", lambda args: seen.append((quiet.is_quiet(), quiet.is_verbose())) or 0)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 0
    assert seen == [expected]
    assert not quiet.is_quiet()  # main leaves the process's filters as it found them


def test_importing_compress_changes_no_warning_filter():
    result = run_python(
        """
        import logging, warnings
        import torch  # torch adds filters of its own on import
        before = list(warnings.filters)
        import compress, compress.cli, compress.quiet, targets.executorch_target
        assert warnings.filters == before, "filters changed on import"
        assert not logging.getLogger("coremltools").filters, "log filters added on import"
        print("unchanged")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout


def test_verbose_flag_runs_a_real_command():
    result = subprocess.run(
        [sys.executable, "-m", "compress", "--verbose", "plugins", "--kind", "targets"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "executorch" in result.stdout


NATIVE_BLOCKS = """
    import logging, os, sys, warnings
    from compress import quiet
    from compress.console import make_console

    quiet.install()
    logging.basicConfig(format="log before: %(message)s")
    with quiet.native_stderr():
        os.write(2, b"NATIVE-FD2-LINE\\n")
        sys.stderr.write("NATIVE-SYS-STDERR-LINE\\n")  # how ExecuTorch's C++ log reaches Python
        warnings.warn("PYTHON-WARNING-IN-BLOCK")
        logging.getLogger("compress.example").warning("OWN-LOG-LINE")
        make_console().print("OWN-CONSOLE-LINE")
    logging.root.handlers.clear()
    with quiet.native_stderr():
        logging.basicConfig(format="log made in a block: %(message)s")  # as XNNPACK's partitioner does on import
    logging.getLogger("compress.example").warning("LOG-AFTER-THE-BLOCK")
    try:
        with quiet.native_stderr():
            os.write(2, b"NATIVE-ERROR-DETAIL\\n")
            raise RuntimeError("the native call failed")
    except RuntimeError as exc:
        print(f"caught: {exc}", file=sys.stderr)
    print("stderr still works", file=sys.stderr)
"""


def test_native_stderr_is_kept_out_of_the_console_and_given_back_on_error():
    result = run_python(NATIVE_BLOCKS)
    assert result.returncode == 0, result.stderr
    assert "NATIVE-FD2-LINE" not in result.stderr + result.stdout
    assert "NATIVE-SYS-STDERR-LINE" not in result.stderr + result.stdout
    assert "PYTHON-WARNING-IN-BLOCK" in result.stderr
    assert "log before: OWN-LOG-LINE" in result.stderr
    assert "OWN-CONSOLE-LINE" in result.stdout
    assert "log made in a block: LOG-AFTER-THE-BLOCK" in result.stderr
    error = result.stderr.index("NATIVE-ERROR-DETAIL")
    assert error < result.stderr.index("caught: the native call failed") < result.stderr.index("stderr still works")


def test_native_stderr_does_nothing_when_verbose():
    result = run_python(NATIVE_BLOCKS, {quiet.VERBOSE_ENV: "1"})
    assert result.returncode == 0, result.stderr
    assert "NATIVE-FD2-LINE" in result.stderr
    assert "NATIVE-SYS-STDERR-LINE" in result.stderr


# The calls that printed the lines above: Core ML's import, torchao's, an ExecuTorch lowering and the
# runtime's first load (argv[1] is the .pte; with "load-only" the lowering is skipped), and transformers'.
REAL_CALLS = """
    import sys
    from compress import quiet
    quiet.install()
    import torch
    from targets.coreml_target import _coremltools
    from targets.executorch_target import ExecuTorchTarget

    _coremltools()
    import torchao
    target = ExecuTorchTarget()
    if "load-only" not in sys.argv:
        target.export_program(torch.nn.Linear(4, 4), torch.randn(1, 4), sys.argv[1])
    target.load(sys.argv[1])(torch.randn(1, 4))
    import transformers.utils.logging
    print("progress bars:", transformers.utils.logging.is_progress_bar_enabled())
"""


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    pte = tmp_path_factory.mktemp("quiet") / "linear.pte"
    return run_python(REAL_CALLS, {"PYTHONWARNINGS": "default"}, str(pte)), pte


def test_a_quiet_run_of_the_real_calls_prints_none_of_the_seen_lines(quiet_run):
    result, pte = quiet_run
    assert result.returncode == 0, result.stderr
    assert pte.is_file()
    output = result.stdout + result.stderr
    assert [f for f in SEEN_FRAGMENTS if f in output] == []
    assert "progress bars: False" in result.stdout
    assert result.stderr.strip() == ""


def test_a_verbose_run_of_the_same_calls_prints_them(quiet_run):
    _, pte = quiet_run
    result = run_python(REAL_CALLS, {"PYTHONWARNINGS": "default", quiet.VERBOSE_ENV: "1"}, str(pte), "load-only")
    assert result.returncode == 0, result.stderr
    assert [f for f in SEEN_FRAGMENTS if f in result.stderr] != []
    assert "progress bars: True" in result.stdout
