"""The adb device: an Android phone through the ``adb`` command line (``-s SERIAL push/shell/pull``).

Every ``adb shell`` command is ONE string built with ``shlex.quote`` (adb joins
its arguments into one remote command line anyway).  With a Python on the device
(e.g. Termux) the agent runs as on any board; without one, TFLite's
``benchmark_model`` binary (path from the profile) measures latency only and its
summary lines are parsed.  The work dir is ``/data/local/tmp/edgesep-XXXXXXXX``,
removed in a ``finally``; results are pulled also after a failure.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgesep.devices.base import (
    AGENT_PATH,
    TIMEOUT_GRACE_S,
    DeviceRunError,
    ProcessOutcome,
    RunSpec,
    agent_arguments,
    check_models,
    check_results_dir,
    collect_results,
    finish_run,
    run_process,
    stage_inputs,
    stop_agent_script,
)
from edgesep.devices.remote import (
    EXIT_NOT_FOUND,
    agent_outcome,
    cleaned_up,
    cleanup_command,
    made_dir,
    make_dir_command,
    python_not_found,
    remote_models,
)
from edgesep.errors import DeviceError
from edgesep.results import RunResults

EXIT_MARKER = "edgesep-exit:"
_ADB_TIMEOUT_S = 120.0
RECONNECT_WAIT_S = 10.0  # after a dropped link, how long to wait for the device before pulling
_TIMINGS = re.compile(
    r"Inference timings in us: Init: (?P<init>[\d.]+), First inference: (?P<first>[\d.]+), "
    r"Warmup \(avg\): (?P<warmup>[\d.eE+-]+), Inference \(avg\): (?P<avg>[\d.eE+-]+)"
)
_COUNT_LINE = re.compile(
    r"count=(?P<count>\d+) first=(?P<first>[\d.]+) curr=(?P<curr>[\d.]+) min=(?P<min>[\d.]+) "
    r"max=(?P<max>[\d.]+) avg=(?P<avg>[\d.eE+-]+) std=(?P<std>[\d.]+)"
)


@dataclass(frozen=True)
class BenchmarkTimings:
    """What ``benchmark_model`` prints, in microseconds."""

    init_us: float
    first_us: float
    warmup_avg_us: float
    avg_us: float
    count: int | None = None
    min_us: float | None = None
    max_us: float | None = None
    std_us: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


def parse_benchmark_output(text: str) -> BenchmarkTimings:
    """Parse ``Inference timings in us: Init: ..., Inference (avg): ...`` (+ the last ``count=`` line)."""
    timings = _TIMINGS.search(text)
    if timings is None:
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-2:])
        raise DeviceError(f"benchmark_model printed no 'Inference timings in us' line: {tail or 'no output'}")
    counts = _COUNT_LINE.findall(text)
    last = dict(zip(("count", "first", "curr", "min", "max", "avg", "std"), counts[-1])) if counts else None
    return BenchmarkTimings(
        init_us=float(timings["init"]),
        first_us=float(timings["first"]),
        warmup_avg_us=float(timings["warmup"]),
        avg_us=float(timings["avg"]),
        count=int(last["count"]) if last else None,
        min_us=float(last["min"]) if last else None,
        max_us=float(last["max"]) if last else None,
        std_us=float(last["std"]) if last else None,
    )


@dataclass(frozen=True)
class AdbDevice:
    """An Android device by serial; ``python`` (command list) or ``benchmark_model`` (device path)."""

    serial: str
    python: tuple[str, ...] | None = None
    benchmark_model: str | None = None
    workdir: str = "/data/local/tmp"
    adb: str = "adb"
    name: str = "adb"
    emulated: bool = False

    def adb_command(self, *args: str) -> list[str]:
        return [self.adb, "-s", self.serial, *args]

    def shell_command(self, command: str) -> list[str]:
        return self.adb_command("shell", command)

    def _adb(self, *args: str, what: str, timeout_s: float = _ADB_TIMEOUT_S) -> ProcessOutcome:
        outcome = run_process(self.adb_command(*args), timeout_s=timeout_s)
        if outcome.timed_out:
            raise DeviceError(f"{self.name} ({self.serial}): {what} did not finish within {timeout_s:g} s")
        if outcome.returncode != 0:
            raise DeviceError(f"{self.name} ({self.serial}): {what} failed: {self._explain(outcome)}")
        return outcome

    def _explain(self, outcome: ProcessOutcome) -> str:
        text = outcome.stderr.strip() or outcome.stdout.strip() or f"exit code {outcome.returncode}"
        first = text.splitlines()[0]
        low = text.lower()
        if "unauthorized" in low:
            return f"{first} (accept the USB debugging prompt on the phone)"
        if "not found" in low and "device" in low:
            return f"{first} (is it plugged in? see 'adb devices')"
        if "offline" in low or "closed" in low or "no devices" in low:
            return f"{first} (the device disconnected; reconnect it and retry)"
        return first

    def only_serial(self) -> str:
        """The serial of the one attached device (``adb devices``); an error for none or several."""
        outcome = run_process([self.adb, "devices"], timeout_s=_ADB_TIMEOUT_S)
        if outcome.timed_out or outcome.returncode != 0:
            raise DeviceError(f"{self.name}: 'adb devices' failed: {self._explain(outcome)}")
        rows = [line.split() for line in outcome.stdout.splitlines()[1:] if line.strip()]
        serials = [row[0] for row in rows if len(row) >= 2]
        if len(serials) != 1:
            found = ", ".join(" ".join(row[:2]) for row in rows) or "none"
            raise DeviceError(f"{self.name}: set serial (adb://SERIAL): expected one attached device, found {found}")
        return serials[0]

    def check_online(self) -> None:
        outcome = run_process(self.adb_command("get-state"), timeout_s=_ADB_TIMEOUT_S)
        state = outcome.stdout.strip()
        if outcome.timed_out or outcome.returncode != 0 or state != "device":
            raise DeviceError(f"{self.name} ({self.serial}) is not available: {self._explain(outcome)}")

    def run(
        self,
        models: Mapping[str, Path],
        inputs: np.ndarray | None,
        results_dir: Path,
        *,
        spec: RunSpec = RunSpec(),
        force: bool = False,
    ) -> dict[str, RunResults]:
        if not self.serial:
            return replace(self, serial=self.only_serial()).run(models, inputs, results_dir, spec=spec, force=force)
        checked = check_models(models)
        tags = list(checked)
        results_dir = check_results_dir(results_dir, tags, force=force)
        if self.python is None and self.benchmark_model is None:
            raise DeviceError(f"{self.name}: the profile needs 'python' or 'benchmark_model' (a path on the device)")
        self.check_online()
        remote_dir = self._make_remote_dir(tags)
        with cleaned_up(lambda: self._cleanup(remote_dir)):  # a failing cleanup never hides the run's error
            self._push_models(checked, remote_dir)
            models_there = remote_models(remote_dir, checked)
            if self.python is None:
                return self._benchmark(checked, models_there, results_dir, spec=spec, force=force)
            return self._run_agent(remote_dir, models_there, inputs, results_dir, spec=spec, force=force)

    def _make_remote_dir(self, tags: Sequence[str]) -> str:
        command, _template = make_dir_command(self.workdir, tags)
        remote_dir = made_dir(self._adb("shell", command, what="mktemp -d").stdout)
        if remote_dir is None:
            raise DeviceError(f"{self.name} ({self.serial}): cannot create a temp dir in {self.workdir}")
        return remote_dir

    def _push_models(self, models: Mapping[str, Path], remote_dir: str) -> None:
        for tag, path in models.items():
            self._adb("push", str(path), f"{remote_dir}/models/{tag}/{path.name}", what=f"pushing {path.name}")

    def _run_agent(
        self,
        remote_dir: str,
        remote_models: Mapping[str, str],
        inputs: np.ndarray | None,
        results_dir: Path,
        *,
        spec: RunSpec,
        force: bool,
    ) -> dict[str, RunResults]:
        assert self.python is not None, "run() uses benchmark_model when python is not set"
        tags = list(remote_models)
        where = f"{self.name} ({self.serial})"
        with tempfile.TemporaryDirectory(prefix="edgesep-adb-") as tmp:
            staging = Path(tmp)
            outcome = None
            try:
                self._adb("push", str(AGENT_PATH), f"{remote_dir}/agent.py", what="pushing the agent")
                inputs_path = stage_inputs(inputs, staging)
                if inputs_path is not None:
                    self._adb("push", str(inputs_path), f"{remote_dir}/inputs.npy", what="pushing the inputs")
                args = agent_arguments(remote_models, inputs="inputs.npy" if inputs_path else None, out_dir="out", spec=spec)
                hard_limit = spec.timeout_s + TIMEOUT_GRACE_S
                agent = shlex.join([*self.python, "agent.py", *args])
                command = (
                    f"cd {shlex.quote(remote_dir)} && {{ timeout -k 5 {hard_limit:g} {agent} & "
                    f"echo $! > agent.pid; wait $!; echo {EXIT_MARKER}$?; }}"
                )
                outcome = run_process(self.shell_command(command), timeout_s=hard_limit + TIMEOUT_GRACE_S)
            finally:
                if outcome is None or _exit_code(outcome.stdout) is None:
                    if outcome is not None and not outcome.timed_out:
                        self._wait_for_device()  # a dropped link (USB glitch, adb reconnect) often comes back
                    # the link dropped (or we were interrupted): stop the agent so its last chunk is written
                    with contextlib.suppress(DeviceError):  # best effort: never in place of the run's own error
                        run_process(self.shell_command(stop_agent_script(shlex.quote(remote_dir))), timeout_s=_ADB_TIMEOUT_S)
                collected = self._pull(remote_dir, staging, results_dir, tags, force=force)
        return self._finish(outcome, collected, tags, where=where, spec=spec, remote_dir=remote_dir)

    def _wait_for_device(self) -> bool:
        """``adb -s SERIAL wait-for-device``, at most RECONNECT_WAIT_S; True when the device is back."""
        outcome = run_process(self.adb_command("wait-for-device"), timeout_s=RECONNECT_WAIT_S)
        return not outcome.timed_out and outcome.returncode == 0

    def _finish(self, outcome: ProcessOutcome, collected, tags, *, where: str, spec: RunSpec, remote_dir: str) -> dict[str, RunResults]:
        code = _exit_code(outcome.stdout)
        if code is None and not outcome.timed_out:
            adb_said = [line for line in outcome.stderr.splitlines() if line.startswith(("error:", "adb:"))]
            why = adb_said[0] if adb_said else "adb shell ended without the agent's exit status"
            where_left = "" if collected else f" (the device did not come back; what it measured stays in {remote_dir} on it)"
            raise DeviceRunError(
                f"{where}: lost the device during the run ({why}); partial results kept for {sorted(collected) or 'no model'}{where_left}",
                results=collected,
            )
        if code == EXIT_NOT_FOUND:
            hint = "install Python there (e.g. Termux: pkg install python) or set benchmark_model in the profile"
            raise python_not_found(where, self.python or (), hint=hint, results=collected)
        return finish_run(agent_outcome(outcome, code), collected, tags, where=where, timeout_s=spec.timeout_s)

    def _pull(self, remote_dir: str, staging: Path, results_dir: Path, tags: Sequence[str], *, force: bool) -> dict[str, RunResults]:
        outcome = run_process(self.adb_command("pull", f"{remote_dir}/out", str(staging)), timeout_s=_ADB_TIMEOUT_S)
        if outcome.timed_out or outcome.returncode != 0:
            return {}
        return collect_results(staging / "out", results_dir, tags, force=force)

    def _cleanup(self, remote_dir: str) -> None:
        run_process(self.shell_command(cleanup_command(remote_dir)), timeout_s=_ADB_TIMEOUT_S)

    def _benchmark(
        self,
        models: Mapping[str, Path],
        remote_models: Mapping[str, str],
        results_dir: Path,
        *,
        spec: RunSpec,
        force: bool,
    ) -> dict[str, RunResults]:
        """Latency only, through ``benchmark_model`` (no outputs)."""
        facts = self.device_facts()
        results: dict[str, RunResults] = {}
        deadline = time.monotonic() + spec.timeout_s
        for tag, remote_path in remote_models.items():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceRunError(f"{self.name} ({self.serial}): timeout of {spec.timeout_s:g} s reached", results=results)
            argv = [
                self.benchmark_model or "benchmark_model",
                f"--graph={remote_path}",
                f"--num_runs={spec.runs}",
                f"--warmup_runs={spec.warmup}",
                "--min_secs=0",
                "--warmup_min_secs=0",
                f"--max_secs={spec.timeout_s:g}",
                f"--use_xnnpack={'true' if spec.use_xnnpack else 'false'}",
            ]
            if spec.threads is not None:
                argv.append(f"--num_threads={spec.threads}")
            outcome = run_process(self.shell_command(shlex.join(argv)), timeout_s=remaining + TIMEOUT_GRACE_S)
            if outcome.timed_out or outcome.returncode != 0:
                detail = "timed out" if outcome.timed_out else self._explain(outcome)
                raise DeviceRunError(f"{self.name} ({self.serial}): benchmark_model failed on {tag}: {detail}", results=results)
            timings = parse_benchmark_output(outcome.stdout + "\n" + outcome.stderr)
            result = RunResults(
                tag=tag,
                model_name=models[tag].name,
                model_bytes=models[tag].stat().st_size,
                latencies_ms=np.array([], dtype=np.float64),
                warmup=spec.warmup,
                threads=spec.threads,
                outputs=None,
                device=facts,
                emulated=self.emulated,
                complete=True,
                use_xnnpack=spec.use_xnnpack,
                init_ms=timings.init_us / 1000.0,
                source="benchmark_model",
                extra={"benchmark_model": timings.to_dict()},
            )
            result.save(results_dir, force=force)
            results[tag] = result
        return results

    def device_facts(self) -> dict:
        """Model, ABI, cores and CPU from getprop and /proc/cpuinfo (best effort)."""
        command = (
            "getprop ro.product.model; getprop ro.product.cpu.abi; nproc; "
            "grep -m1 -E '^(Hardware|model name)' /proc/cpuinfo; getprop ro.build.version.release"
        )
        outcome = run_process(self.shell_command(command), timeout_s=_ADB_TIMEOUT_S)
        lines = (outcome.stdout.splitlines() + [""] * 5)[:5]
        cores = lines[2].strip()
        return {
            "cpu": lines[3].partition(":")[2].strip() or lines[0].strip() or "unknown",
            "model": lines[0].strip(),
            "cores": int(cores) if cores.isdigit() else 0,
            "machine": lines[1].strip(),
            "android": lines[4].strip(),
            "python": None,
            "numpy": None,
            "runtime": {"name": "benchmark_model", "version": "unknown"},
        }


def _exit_code(stdout: str) -> int | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(EXIT_MARKER):
            value = line[len(EXIT_MARKER) :].strip()
            return int(value) if value.lstrip("-").isdigit() else None
    return None
