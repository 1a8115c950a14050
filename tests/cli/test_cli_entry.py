"""The console script on any typer the version range allows: no click import, usage errors mapped to exit 2,
TensorFlow's native info lines kept out of stderr."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from edgesep.cli.main import _verbosity_requested, main

CLI = Path(__file__).resolve().parents[2] / "edgesep" / "cli"


def test_the_cli_never_imports_click():
    """typer >= 0.26 vendors click and no longer installs it: importing click would break a fresh install."""
    for module in CLI.glob("*.py"):
        tree = ast.parse(module.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "click" not in imported, module


def test_usage_errors_and_help_exit_codes(capsys):
    assert main(["--help"]) == 0
    assert "Usage: edgesep" in capsys.readouterr().out
    assert main(["convert", "--no-such-option"]) == 2
    assert "No such option: --no-such-option" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


@pytest.mark.parametrize(
    "argv,count",
    [(["-v", "run"], 1), (["-vv", "run"], 2), (["--verbose", "-v", "run"], 2), (["run", "-vv"], 0), ([], 0)],
)
def test_verbosity_is_read_before_the_command(argv, count):
    assert _verbosity_requested(argv) == count


def test_native_stderr_filter_drops_only_the_known_lines():
    code = (
        "import os, sys\n"
        "from edgesep.cli.native_stderr import filtered_native_stderr\n"
        "with filtered_native_stderr():\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'fully_quantize: 0, inference_type: 6, input_inference_type: INT8\\n')\n"
        "    os.write(2, b'calibrating: 10%\\rcalibrating: 100%\\r')\n"
        "    print('a real error line', file=sys.stderr)\n"
        "    os.write(2, b'no newline at the end')\n"
        "print('after', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"calibrating: 10%\rcalibrating: 100%\ra real error line\nno newline at the endafter\n"


@pytest.mark.slow
def test_console_script_run_prints_no_native_info_lines(default_run):
    if not default_run.console_script:
        pytest.skip("the edgesep console script is not installed next to this Python")
    done = default_run.done  # `edgesep run -o OUT` through the console script (tests/conftest.py)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[quantize-int8] done" in done.stderr and "int8" in done.stdout
    for noise in ("XNNPACK delegate", "fully_quantize:", "inference_type"):
        assert noise not in done.stderr
