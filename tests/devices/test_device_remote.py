"""edgesep.devices.remote: the run folder command, exit codes and the cleanup that never hides a run's error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgesep.devices.base import DeviceRunError, ProcessOutcome, RunSpec
from edgesep.devices.remote import (
    EXIT_NOT_FOUND,
    agent_command,
    agent_outcome,
    cleaned_up,
    exit_code,
    link_failure,
    made_dir,
    make_dir_command,
)
from edgesep.errors import DeviceError


def test_make_dir_command_runs_in_a_real_shell_and_quotes_tags(tmp_path):
    command, template = make_dir_command(str(tmp_path) + "/", ["a b", "x;touch pwned"])
    assert template == f"{tmp_path}/edgesep-XXXXXXXX"
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    folder = made_dir(done.stdout)
    assert folder is not None and folder.startswith(f"{tmp_path}/edgesep-")
    made = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*"))
    assert made == ["models", "models/a b", "models/x;touch pwned", "out"]
    assert not (tmp_path / "pwned").exists() and made_dir("mktemp: failed\n") is None


@pytest.mark.parametrize(("python", "expected"), [(("false",), 1), (("sh", "-c", "exit 7"), 7), (("no-such-python",), EXIT_NOT_FOUND)])
def test_agent_command_echoes_the_agent_status_in_a_real_shell(tmp_path, python, expected):
    command = agent_command(str(tmp_path), {"f": "models/f/m.tflite"}, python=python, has_inputs=False, spec=RunSpec(timeout_s=5))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert exit_code(done.stdout) == expected and done.returncode == 0
    assert (tmp_path / "agent.pid").read_text().strip().isdigit()  # what a later stop_agent_script TERMs


def test_a_missing_exit_marker_is_a_lost_link():
    lost = ProcessOutcome(255, "", "INFO: Created TensorFlow Lite XNNPACK delegate\nConnection to 127.0.0.1 closed.\n", False)
    assert exit_code(lost.stdout) is None and link_failure(lost) == "Connection to 127.0.0.1 closed."
    assert link_failure(ProcessOutcome(1, "", "INFO: x\n", False)).endswith("(exit 1) without the agent's exit status")


def test_agent_outcome_maps_timeout_and_keeps_other_codes():
    raw = ProcessOutcome(0, "out", "err", timed_out=False)
    assert agent_outcome(raw, 124).timed_out and agent_outcome(raw, 124).returncode is None
    assert agent_outcome(raw, 3).returncode == 3 and agent_outcome(raw, None) is raw


def test_cleanup_errors_never_replace_the_run_error():
    calls = []

    def failing_cleanup():
        calls.append("cleanup")
        raise RuntimeError("cleanup broke")

    with pytest.raises(DeviceRunError, match="the run failed"), cleaned_up(failing_cleanup):
        raise DeviceRunError("the run failed", results={})
    assert calls == ["cleanup"]

    def link_gone():
        raise DeviceError("connection closed")

    with cleaned_up(link_gone):  # after a good run a lost link at cleanup only leaves the folder behind
        calls.append("run")
    with pytest.raises(RuntimeError, match="cleanup broke"), cleaned_up(failing_cleanup):  # a bug in it still shows
        pass
    assert calls == ["cleanup", "run", "cleanup"]
