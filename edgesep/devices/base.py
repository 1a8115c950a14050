"""What every device shares: the run spec, the Device protocol, staging and result collection.

A device runs the agent (``edgesep/devices/agent.py``) somewhere, then copies the
agent's results files into the host's ``results_dir``.  Partial results are
collected on every failure before the error is raised (:class:`DeviceRunError`
carries them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edgesep.errors import DeviceError, InputError, ShapeError
from edgesep.fileio import atomic_path, check_output_folder
from edgesep.results import RunResults, results_paths

AGENT_PATH = Path(__file__).with_name("agent.py")
AGENT_EXIT_BAD_INPUT = 2
AGENT_EXIT_TIMEOUT = 3
TIMEOUT_GRACE_S = 15.0  # the agent stops itself at the timeout; the host kills it this much later
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RunSpec:
    """How to run each model: timed runs, warm-up runs, threads, time limit, XNNPACK."""

    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    timeout_s: float = 600.0
    use_xnnpack: bool = True
    seed: int = 0  # for the random inputs of a latency-only run

    def __post_init__(self) -> None:
        if self.runs < 0 or self.warmup < 0:
            raise InputError(f"runs and warmup must be >= 0, got runs={self.runs} warmup={self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.timeout_s <= 0:
            raise InputError(f"timeout_s must be > 0, got {self.timeout_s}")


class DeviceRunError(DeviceError):
    """A run that failed after it started; ``results`` holds what was measured (``complete`` False)."""

    def __init__(self, message: str, *, results: Mapping[str, RunResults] | None = None):
        super().__init__(message)
        self.results: dict[str, RunResults] = dict(results or {})


class DeviceLostError(DeviceRunError):
    """The device, the link to it or the agent's process went away during the run (killed by a signal, link
    dropped): nothing says the models are at fault, so a farm reports the cell ``lost`` (run it again), not
    ``failed``."""

    device_lost = True


@runtime_checkable
class Device(Protocol):
    """Where models run.  ``run`` returns one RunResults per tag of ``models``."""

    @property
    def name(self) -> str: ...

    @property
    def emulated(self) -> bool: ...

    def run(
        self,
        models: Mapping[str, Path],
        inputs: np.ndarray | None,
        results_dir: Path,
        *,
        spec: RunSpec = RunSpec(),
        force: bool = False,
    ) -> dict[str, RunResults]: ...


@dataclass(frozen=True)
class ProcessOutcome:
    returncode: int | None  # None when killed at the timeout
    stdout: str
    stderr: str
    timed_out: bool

    def last_error_line(self) -> str:
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        agent_lines = [line for line in lines if line.startswith("edgesep-agent:")]
        return (agent_lines or lines or [f"exit code {self.returncode}"])[-1]


def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> ProcessOutcome:
    """Run an argument list (never a shell); on timeout kill its whole process group."""
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise DeviceError(f"command not found: {argv[0]}") from None
    try:
        stdout, stderr = process.communicate(input_text, timeout=timeout_s)
        return ProcessOutcome(process.returncode, stdout, stderr, timed_out=False)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        return ProcessOutcome(None, stdout, stderr, timed_out=True)
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise


def _kill_group(process: subprocess.Popen, *, grace_s: float = 5.0) -> None:
    """SIGTERM the process group (the agent then writes its partial results), SIGKILL after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_agent_script(quoted_dir: str, *, wait_s: float = 5.0) -> str:
    """Shell text (for the device's sh) that TERMs the agent recorded in ``agent.pid`` and waits until it
    has exited, so its last chunk of results is on disk before the host pulls or removes the folder."""
    ticks = max(1, int(wait_s * 10))
    return (
        f"if [ -f {quoted_dir}/agent.pid ]; then p=$(cat {quoted_dir}/agent.pid); "
        f'kill -TERM "$p" 2>/dev/null; i=0; '
        f'while kill -0 "$p" 2>/dev/null && [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done; fi'
    )


def check_models(models: Mapping[str, Path]) -> dict[str, Path]:
    """Validate tags (safe file names) and model files; returns tag -> resolved Path."""
    if not models:
        raise InputError("no models to run")
    checked = {}
    for tag, path in models.items():
        if not _TAG_PATTERN.match(tag):
            raise InputError(f"bad model tag {tag!r}: use letters, digits, '_', '-', '.'")
        path = Path(path)
        if not path.is_file():
            raise InputError(f"model not found: {path}")
        if path.suffix != ".tflite":
            raise InputError(f"devices run .tflite models, got {path.name}")
        checked[tag] = path.resolve()
    return checked


def check_results_dir(results_dir: Path, tags: Sequence[str], *, force: bool) -> Path:
    """Create ``results_dir``; refuse existing results for these tags unless ``force``."""
    folder = check_output_folder(results_dir)
    if not force:
        existing = [p.name for tag in tags for p in results_paths(folder, tag) if p.exists()]
        if existing:
            raise InputError(f"results exist in {folder}: {', '.join(existing)}; pass --force to overwrite")
    return folder


def stage_inputs(inputs: np.ndarray | None, folder: Path) -> Path | None:
    """Write the float32 input batch as ``inputs.npy`` in ``folder`` (None: random inputs)."""
    if inputs is None:
        return None
    array = np.asarray(inputs)
    if array.ndim < 1 or array.shape[0] == 0:
        raise ShapeError(f"inputs must be a non-empty batch (N, ...), got shape {array.shape}")
    path = Path(folder) / "inputs.npy"
    np.save(path, array.astype(np.float32, copy=False))
    return path


def agent_arguments(
    models: Mapping[str, str],
    *,
    inputs: str | None,
    out_dir: str,
    spec: RunSpec,
) -> list[str]:
    """The agent's command-line arguments (after ``python agent.py``); paths as the device sees them."""
    argv = ["--models", *[f"{path}={tag}" for tag, path in models.items()], "--out", out_dir]
    if inputs is not None:
        argv += ["--inputs", inputs]
    argv += ["--runs", str(spec.runs), "--warmup", str(spec.warmup), "--timeout", f"{spec.timeout_s:g}"]
    argv += ["--seed", str(spec.seed)]
    if spec.threads is not None:
        argv += ["--threads", str(spec.threads)]
    if not spec.use_xnnpack:
        argv.append("--no-xnnpack")
    return argv


def collect_results(
    staging_dir: Path,
    results_dir: Path,
    tags: Sequence[str],
    *,
    force: bool,
) -> dict[str, RunResults]:
    """Copy the agent's files for ``tags`` from ``staging_dir`` into ``results_dir``; load them."""
    collected = {}
    for tag in tags:
        json_src, npz_src = results_paths(staging_dir, tag)
        if not json_src.is_file():
            continue
        json_dst, npz_dst = results_paths(results_dir, tag)
        if npz_src.is_file():
            _copy_atomic(npz_src, npz_dst)
        elif npz_dst.exists() and force:
            npz_dst.unlink()
        _copy_atomic(json_src, json_dst)
        collected[tag] = RunResults.load(json_dst)
    return collected


def _copy_atomic(source: Path, target: Path) -> None:
    """Copy through a temp file beside ``target`` (named like every edgesep temp file, so a run killed here
    leaves nothing the next run does not remove: ``fileio.remove_stale_temps``)."""
    with atomic_path(target, force=True) as tmp:
        shutil.copyfile(source, tmp)


def finish_run(
    outcome: ProcessOutcome,
    collected: dict[str, RunResults],
    tags: Sequence[str],
    *,
    where: str,
    timeout_s: float,
) -> dict[str, RunResults]:
    """Raise :class:`DeviceRunError` (with partial results) unless every tag completed."""
    if outcome.timed_out:
        raise DeviceRunError(
            f"{where}: run exceeded its timeout of {timeout_s:g} s and was stopped; "
            f"partial results kept for {sorted(collected) or 'no model'}",
            results=collected,
        )
    if outcome.returncode == AGENT_EXIT_TIMEOUT:
        raise DeviceRunError(f"{where}: {outcome.last_error_line()}; partial results kept", results=collected)
    if outcome.returncode is not None and outcome.returncode < 0:  # killed by a signal: not by us (timed_out above)
        message = f"{where}: the agent was killed by signal {-outcome.returncode}; partial results kept"
        raise DeviceLostError(message, results=collected)
    if outcome.returncode != 0:
        raise DeviceRunError(f"{where}: agent failed: {outcome.last_error_line()}", results=collected)
    incomplete = [tag for tag in tags if tag not in collected or not collected[tag].complete]
    if incomplete:
        raise DeviceRunError(f"{where}: no complete results for {', '.join(incomplete)}", results=collected)
    return collected
