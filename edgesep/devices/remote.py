"""What the ssh and adb devices share about a run in a temp folder on the device.

The folder (``mktemp -d`` with ``out/`` and ``models/<tag>/`` in it), the agent's exit codes
that ``timeout`` and the shell give (124: timed out, 127: python not found) and the cleanup
(stop the agent, remove the folder), which never replaces the error of the run it follows.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from edgesep.devices.base import DeviceRunError, ProcessOutcome, stop_agent_script
from edgesep.errors import DeviceError
from edgesep.results import RunResults

EXIT_TIMEOUT = 124  # coreutils timeout stopped the agent
EXIT_NOT_FOUND = 127  # the shell did not find the python command


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


def remote_models(remote_dir: str, models: Mapping[str, Path]) -> dict[str, str]:
    """Where each pushed model is on the device."""
    return {tag: f"{remote_dir}/models/{tag}/{path.name}" for tag, path in models.items()}


def cleanup_command(remote_dir: str) -> str:
    """Stop the agent if it still runs, then remove the run's folder."""
    quoted = shlex.quote(remote_dir)
    return f"{stop_agent_script(quoted)}; rm -rf {quoted}"


def agent_outcome(outcome: ProcessOutcome, code: int | None) -> ProcessOutcome:
    """The agent's outcome with its exit ``code`` (124 -> timed out) for ``finish_run``."""
    if code == EXIT_TIMEOUT:
        return ProcessOutcome(None, outcome.stdout, outcome.stderr, timed_out=True)
    if code is None or code == outcome.returncode:
        return outcome
    return ProcessOutcome(code, outcome.stdout, outcome.stderr, timed_out=outcome.timed_out)


def python_not_found(where: str, python: Sequence[str], *, hint: str, results: Mapping[str, RunResults]) -> DeviceRunError:
    """Exit 127: the device has no such python command."""
    return DeviceRunError(f"{where}: python command {shlex.join(python)!r} not found on the device; {hint}", results=dict(results))


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
