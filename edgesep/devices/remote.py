"""One remote-shell transport, and a run in a temp folder on the device written once on top of it.

A :class:`Transport` runs one quoted command line on the device, pushes files into a folder there
and pulls a folder back; ``ssh.py`` (ssh/scp) and ``adb.py`` (adb shell/push/pull) implement it.
This module owns the rest, for both: the run's folder (``mktemp -d`` with ``out/`` and
``models/<tag>/``), the agent's command line under ``timeout`` with its exit status echoed after
a marker (so a lost link is told apart from the agent's own code; 124: timed out, 127: python not
found), the pull of what was measured after any failure, and the cleanup (stop the agent, remove
the folder), which never replaces the error of the run it follows.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgesep.devices.base import (
    AGENT_PATH,
    TIMEOUT_GRACE_S,
    DeviceLostError,
    DeviceRunError,
    ProcessOutcome,
    RunSpec,
    agent_arguments,
    check_models,
    check_results_dir,
    collect_results,
    finish_run,
    stage_inputs,
    stop_agent_script,
)
from edgesep.errors import DeviceError
from edgesep.results import RunResults

EXIT_TIMEOUT = 124  # coreutils timeout stopped the agent
EXIT_NOT_FOUND = 127  # the shell did not find the python command
EXIT_MARKER = "edgesep-exit:"  # the agent's exit status, echoed by the device's shell after it


class Transport(Protocol):
    """How the host reaches a device's shell and files (ssh.SshDevice, adb.AdbDevice).

    ``where`` is "name (address)", the start of every message; ``workdir`` the device folder each run makes
    its temp folder in.  ``shell`` runs one command line (already quoted) there: with ``what``, a failure to
    reach the device raises a DeviceError naming ``what``; without, it returns the raw outcome.  ``push``
    copies local files into a device folder keeping their names (DeviceError naming ``what``); ``pull`` copies
    a device folder into a local one (best effort: False when nothing came back).  ``check_online`` raises a
    DeviceError saying why the device cannot be reached (before anything is made on it); ``reconnect`` gives
    a dropped link a moment to come back before the results are pulled.
    """

    @property
    def where(self) -> str: ...
    @property
    def workdir(self) -> str: ...
    def shell(self, command: str, *, timeout_s: float | None = None, what: str | None = None) -> ProcessOutcome: ...
    def push(self, sources: Sequence[Path], folder: str, *, what: str) -> None: ...
    def pull(self, remote: str, local_dir: Path) -> bool: ...
    def check_online(self) -> None: ...
    def reconnect(self) -> None: ...


def make_dir_command(workdir: str, tags: Sequence[str]) -> tuple[str, str]:
    """(shell command that creates the run's folder with ``out/`` and ``models/<tag>/`` and prints its path,
    the mktemp template)."""
    template = f"{workdir.rstrip('/')}/edgesep-XXXXXXXX"
    model_dirs = " ".join(shlex.quote(f"models/{tag}") for tag in tags)
    return f'd=$(mktemp -d {shlex.quote(template)}) && cd "$d" && mkdir -p out {model_dirs} && echo "$d"', template


def made_dir(stdout: str) -> str | None:
    """The folder ``make_dir_command`` printed, or None when it printed none."""
    lines = stdout.strip().splitlines()
    return lines[-1].strip() if lines and lines[-1].startswith("/") else None


def cleanup_command(remote_dir: str) -> str:
    """Stop the agent if it still runs, then remove the run's folder."""
    quoted = shlex.quote(remote_dir)
    return f"{stop_agent_script(quoted)}; rm -rf {quoted}"


def agent_command(remote_dir: str, models: Mapping[str, str], *, python: Sequence[str], has_inputs: bool, spec: RunSpec) -> str:
    """The agent under ``timeout`` in the background (its pid in ``agent.pid`` for a later stop), then its exit
    status after :data:`EXIT_MARKER`: no marker in the output means the link, not the agent, ended the run."""
    args = agent_arguments(models, inputs="inputs.npy" if has_inputs else None, out_dir="out", spec=spec)
    agent = shlex.join([*python, "agent.py", *args])
    return (
        f"cd {shlex.quote(remote_dir)} && {{ timeout -k 5 {spec.timeout_s + TIMEOUT_GRACE_S:g} {agent} & "
        f"echo $! > agent.pid; wait $!; echo {EXIT_MARKER}$?; }}"
    )


def exit_code(stdout: str) -> int | None:
    """The agent's exit status echoed by ``agent_command``, or None when the shell ended before echoing it."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(EXIT_MARKER):
            value = line[len(EXIT_MARKER) :].strip()
            return int(value) if value.lstrip("-").isdigit() else None
    return None


def agent_outcome(outcome: ProcessOutcome, code: int | None) -> ProcessOutcome:
    """The agent's outcome with its exit ``code`` (124 -> timed out) for ``finish_run``."""
    if code == EXIT_TIMEOUT:
        return ProcessOutcome(None, outcome.stdout, outcome.stderr, timed_out=True)
    if code is None or code == outcome.returncode:
        return outcome
    return ProcessOutcome(code, outcome.stdout, outcome.stderr, timed_out=outcome.timed_out)


def link_failure(outcome: ProcessOutcome) -> str:
    """What the transport's client said when the link dropped (not the agent's own log lines)."""
    markers = ("error:", "adb:", "ssh:", "client_loop:")
    said = [line.strip() for line in outcome.stderr.splitlines() if line.startswith(markers) or "connection" in line.lower()]
    return said[-1] if said else f"the device's shell ended (exit {outcome.returncode}) without the agent's exit status"


@contextmanager
def cleaned_up(cleanup: Callable[[], object]) -> Iterator[None]:
    """Run the body, then ``cleanup`` (best effort).

    After a failed body the body's error is the one raised, whatever the cleanup does; after a
    successful body a DeviceError of the cleanup (a link gone at the end) only leaves the folder
    behind: the measured results are not thrown away for it.
    """
    try:
        yield
    except BaseException:
        try:
            cleanup()
        except BaseException:  # the run's error is the one to report
            pass
        raise
    try:
        cleanup()
    except DeviceError:
        pass


@dataclass
class RemoteFolder:
    """The run's temp folder on the device; ``removed`` once the cleanup has removed it."""

    path: str
    removed: bool = False


@contextmanager
def remote_folder(transport: Transport, tags: Sequence[str]) -> Iterator[RemoteFolder]:
    """Make the run's folder on the device; stop the agent and remove the folder afterwards (see ``cleaned_up``)."""
    command, template = make_dir_command(transport.workdir, tags)
    outcome = transport.shell(command, what="mktemp -d")
    path = made_dir(outcome.stdout) if outcome.returncode == 0 else None
    if path is None:
        detail = " ".join((outcome.stderr.strip() or outcome.stdout.strip()).split())
        raise DeviceError(f"{transport.where}: cannot create a temp dir in {transport.workdir}: {detail}; tried: mktemp -d {template}")
    folder = RemoteFolder(path)

    def cleanup() -> None:
        folder.removed = transport.shell(cleanup_command(path)).returncode == 0

    with cleaned_up(cleanup):
        yield folder


def push_models(transport: Transport, remote_dir: str, models: Mapping[str, Path]) -> dict[str, str]:
    """Push each model into ``models/<tag>/`` of the run's folder; where they are on the device."""
    for tag, path in models.items():
        transport.push([path], f"{remote_dir}/models/{tag}", what=f"pushing model {path.name}")
    return {tag: f"{remote_dir}/models/{tag}/{path.name}" for tag, path in models.items()}


def run_agent(
    transport: Transport,
    models: Mapping[str, Path],
    inputs: np.ndarray | None,
    results_dir: Path,
    *,
    python: Sequence[str],
    spec: RunSpec,
    force: bool,
    install_hint: str,
) -> dict[str, RunResults]:
    """``Device.run`` through a transport: push the agent, inputs and models into a temp folder, run the agent
    under ``timeout``, pull ``out/`` (also after a failure: partial results are kept), clean up."""
    checked = check_models(models)
    tags = list(checked)
    results_dir = check_results_dir(results_dir, tags, force=force)
    transport.check_online()
    outcome: ProcessOutcome | None = None
    code: int | None = None
    with remote_folder(transport, tags) as folder, tempfile.TemporaryDirectory(prefix="edgesep-remote-") as tmp:
        staging = Path(tmp)
        try:
            inputs_path = stage_inputs(inputs, staging)
            transport.push([AGENT_PATH, *([inputs_path] if inputs_path else [])], folder.path, what="pushing the agent and inputs")
            models_there = push_models(transport, folder.path, checked)
            command = agent_command(folder.path, models_there, python=python, has_inputs=inputs_path is not None, spec=spec)
            outcome = transport.shell(command, timeout_s=spec.timeout_s + 2 * TIMEOUT_GRACE_S)
            code = exit_code(outcome.stdout)
        finally:
            if code is None:  # the link dropped, the host stopped waiting, or we were interrupted
                with suppress(DeviceError):  # best effort, never in place of the run's own error
                    if outcome is not None and not outcome.timed_out:
                        transport.reconnect()
                    transport.shell(stop_agent_script(shlex.quote(folder.path)))  # its last chunk is written first
            pulled = transport.pull(f"{folder.path}/out", staging)
            collected = collect_results(staging / "out", results_dir, tags, force=force) if pulled else {}
    assert outcome is not None, "an outcome exists when the body finished"
    if code is None and not outcome.timed_out:
        kept = sorted(collected) or "no model"
        gone = not collected and not folder.removed
        left = f" (the device did not come back; what it measured stays in {folder.path} on it)" if gone else ""
        lost = f"{transport.where}: lost the device during the run ({link_failure(outcome)})"
        raise DeviceLostError(f"{lost}; partial results kept for {kept}{left}", results=collected)
    if code == EXIT_NOT_FOUND:
        missing = f"{transport.where}: python command {shlex.join(python)!r} not found on the device"
        raise DeviceRunError(f"{missing}; {install_hint}", results=collected)
    return finish_run(agent_outcome(outcome, code), collected, tags, where=transport.where, timeout_s=spec.timeout_s)
