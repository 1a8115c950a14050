"""The adb device: an Android phone through the ``adb`` command line (``-s SERIAL push/shell/pull``).

Every ``adb shell`` command is ONE string built with ``shlex.quote`` (adb joins
its arguments into one remote command line anyway).  With a Python on the device
(e.g. Termux) the agent runs as on any board; without one, TFLite's
``benchmark_model`` binary (path from the profile) measures latency only and its
summary lines are parsed.  The device is a ``remote.Transport``; both routes run in a
``remote.remote_folder`` (``/data/local/tmp/edgesep-XXXXXXXX``, removed afterwards) and the
agent's run, with its partial results after a failure, is ``remote.run_agent``.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgesep.devices.base import (
    TIMEOUT_GRACE_S,
    DeviceRunError,
    ProcessOutcome,
    RunSpec,
    check_models,
    check_results_dir,
    run_process,
)
from edgesep.devices.remote import push_models, remote_folder, run_agent
from edgesep.errors import DeviceError
from edgesep.results import RunResults

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

    # the Transport of edgesep.devices.remote

    @property
    def where(self) -> str:
        return f"{self.name} ({self.serial})"

    def shell(self, command: str, *, timeout_s: float | None = None, what: str | None = None) -> ProcessOutcome:
        """``adb -s SERIAL shell command``; with ``what`` any failure raises, explained."""
        timeout_s = _ADB_TIMEOUT_S if timeout_s is None else timeout_s
        if what is None:
            return run_process(self.shell_command(command), timeout_s=timeout_s)
        return self._adb("shell", command, what=what, timeout_s=timeout_s)

    def push(self, sources: Sequence[Path], folder: str, *, what: str) -> None:
        for source in sources:
            self._adb("push", str(source), f"{folder}/{source.name}", what=what)

    def pull(self, remote: str, local_dir: Path) -> bool:
        try:
            outcome = run_process(self.adb_command("pull", remote, str(local_dir)), timeout_s=_ADB_TIMEOUT_S)
        except DeviceError:  # adb itself gone: nothing pulled (the run's error is the one to report)
            return False
        return not outcome.timed_out and outcome.returncode == 0

    def reconnect(self) -> None:
        """``adb -s SERIAL wait-for-device``, at most RECONNECT_WAIT_S (a USB glitch or adb reconnect often
        comes back)."""
        run_process(self.adb_command("wait-for-device"), timeout_s=RECONNECT_WAIT_S)

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
        if self.python is None and self.benchmark_model is None:
            raise DeviceError(f"{self.name}: the profile needs 'python' or 'benchmark_model' (a path on the device)")
        if self.python is not None:
            hint = "install Python there (e.g. Termux: pkg install python) or set benchmark_model in the profile"
            return run_agent(self, models, inputs, results_dir, python=self.python, spec=spec, force=force, install_hint=hint)
        checked = check_models(models)
        results_dir = check_results_dir(results_dir, list(checked), force=force)
        self.check_online()
        with remote_folder(self, list(checked)) as folder:  # a failing cleanup never hides the run's error
            models_there = push_models(self, folder.path, checked)
            return self._benchmark(checked, models_there, results_dir, spec=spec, force=force)

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
            outcome = self.shell(shlex.join(argv), timeout_s=remaining + TIMEOUT_GRACE_S)
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
        outcome = self.shell(command)
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
