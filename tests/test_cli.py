"""User mistakes on the command line print one clear line and exit non-zero, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from compress.cli import COMMANDS, main
from compress.errors import CompressError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real process, as a user starts it."""
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "compress", *args], capture_output=True, text=True, env=env)


class InProcessResult:
    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def cli(capsys):
    """`main(argv)` in this process (no interpreter start-up per case); a raised exception fails the test."""

    def invoke(*args: str) -> InProcessResult:
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code
        return InProcessResult(code, capsys.readouterr().err)

    return invoke


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: compress " + command in capsys.readouterr().out


def test_missing_config_file_in_a_real_process(tmp_path):
    result = run_cli("recipe", "dc_clip", "--config", str(tmp_path / "nope.yaml"))
    assert_one_line_error(result, "nope.yaml", "no such config file")


def test_unknown_teacher_lists_the_available_ones(cli, tmp_path):
    result = cli("recipe", "dc_clip", "--teacher", "no-such-teacher", "--runs-dir", str(tmp_path))
    assert_one_line_error(result, "unknown teacher plugin 'no-such-teacher'", "demo", "altclip")


def test_missing_data_path(cli, tmp_path):
    missing = tmp_path / "absent.jsonl"
    result = cli("recipe", "dc_clip", "--data", str(missing), "--runs-dir", str(tmp_path), "--set", "teacher=no-such-teacher")
    assert_one_line_error(result, "no-such-teacher")  # the teacher is checked first
    result = cli(
        "recipe",
        "dc_clip",
        "--data",
        str(missing),
        "--runs-dir",
        str(tmp_path),
        "--set",
        "teacher={name: demo, steps: 1, batch_size: 8}",
    )
    assert_one_line_error(result, "absent.jsonl")


def test_malformed_override(cli, tmp_path):
    result = cli("recipe", "dc_clip", "--set", "distill.batch_size", "--runs-dir", str(tmp_path))
    assert_one_line_error(result, "distill.batch_size", "key=value")


def test_bad_yaml_config(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    result = cli("recipe", "dc_clip", "--config", str(bad))
    assert_one_line_error(result, "bad.yaml", "not valid YAML")


def test_unknown_option_and_command_are_usage_errors(cli):
    result = cli("recipe", "dc_clip", "--no-such-option")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr
    result = cli("fly")
    assert result.returncode == 2 and "invalid choice: 'fly'" in result.stderr


def test_traceback_flag_lets_the_error_through(tmp_path):
    with pytest.raises(CompressError, match="no such config file"):
        main(["--traceback", "recipe", "dc_clip", "--config", str(tmp_path / "nope.yaml")])


def test_building_the_command_line_imports_no_torch():
    """`compress --help` and every command's parser stay fast: heavy libraries load when a command runs."""
    code = (
        "import sys; from compress.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'timm', 'transformers', 'executorch', 'coremltools') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
