"""The SSH device: a Raspberry Pi or any Linux board reached with the real ``ssh``/``scp`` binaries.

Every command is an argument list (no local shell); the one remote command
line of each step is built with ``shlex.quote``.  Host keys are checked
(``StrictHostKeyChecking=yes``, optionally against the profile's own
known_hosts file) and ``BatchMode=yes`` means a missing key fails instead of
prompting.  A run: ``mktemp -d`` on the device, push agent.py + models + inputs,
run the agent under ``timeout``, pull the results folder (also after a failure,
so partial results are kept), and always stop the agent and remove the temp dir.
A connection failure before the agent starts (``mktemp``/push) is retried
``retries`` times; the measured run itself is never re-run silently.
"""

from __future__ import annotations

import re
import shlex
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from edgesep.errors import DeviceError, InputError
from edgesep.results import RunResults

SSH_EXIT_CONNECTION = 255
_TRANSFER_TIMEOUT_S = 300.0
_RETRY_PAUSE_S = 1.0
_HOST = re.compile(r"^[A-Za-z0-9_:][A-Za-z0-9_.:%-]*$")  # names, IPv4, IPv6 (no brackets); never "-..."
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_LINK_FAILURES = ("connection closed", "connection reset", "connection refused", "lost connection",
                  "connection timed out", "broken pipe", "kex_exchange_identification")


class SshLinkError(DeviceError):
    """The ssh/scp link itself failed (not the remote command): worth a bounded retry before the run."""


@dataclass(frozen=True)
class SshDevice:
    """A board reached as ``user@host:port`` with an optional key and known_hosts file."""

    host: str
    user: str | None = None
    port: int = 22
    key: Path | None = None
    known_hosts: Path | None = None
    python: tuple[str, ...] = ("python3",)
    workdir: str = "/tmp"
    connect_timeout_s: float = 10.0
    name: str = "ssh"
    emulated: bool = False
    retries: int = 1
    """Extra attempts for a connection failure while setting up (mktemp, push); never for the run."""

    def __post_init__(self) -> None:
        if not _HOST.match(self.host or ""):
            raise InputError(f"bad ssh host {self.host!r}: use a host name or IP address (letters, digits, '.', '-', ':')")
        if self.user is not None and not _USER.match(self.user):
            raise InputError(f"bad ssh user {self.user!r}: use letters, digits, '_', '.', '-'")
        if not 0 <= self.retries <= 10:
            raise InputError(f"retries must be between 0 and 10, got {self.retries}")

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def address(self) -> str:
        return f"{self.destination}:{self.port}"

    def _options(self) -> list[str]:
        options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={max(1, int(round(self.connect_timeout_s)))}",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        if self.known_hosts is not None:
            options += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.key is not None:
            options += ["-i", str(self.key), "-o", "IdentitiesOnly=yes"]
        return options

    def ssh_command(self, remote_command: str) -> list[str]:
        """``ssh ... user@host -- <one quoted command line>``."""
        return ["ssh", *self._options(), "-p", str(self.port), self.destination, "--", remote_command]

    def scp_command(self, sources: Sequence[str], target: str, *, recursive: bool = False) -> list[str]:
        return ["scp", *self._options(), "-P", str(self.port), *(["-r"] if recursive else []), *sources, target]

    def remote(self, path: str) -> str:
        return f"{self.destination}:{path}"

    def _ssh(self, remote_command: str, *, timeout_s: float, what: str) -> ProcessOutcome:
        outcome = run_process(self.ssh_command(remote_command), timeout_s=timeout_s)
        if outcome.timed_out:
            raise DeviceError(f"{self.name} ({self.address}): {what} did not finish within {timeout_s:g} s")
        if outcome.returncode == SSH_EXIT_CONNECTION:
            transient = any(text in outcome.stderr.lower() for text in _LINK_FAILURES)
            raise (SshLinkError if transient else DeviceError)(self._connection_message(outcome.stderr))
        return outcome

    def _connection_message(self, stderr: str) -> str:
        text = stderr.strip().splitlines()[-1] if stderr.strip() else "ssh exited with 255"
        low = stderr.lower()
        if "permission denied" in low:
            reason = "authentication failed: the key was not accepted"
        elif "host key verification failed" in low or "no matching host key" in low:
            reason = "host key verification failed: add the device's key to the known_hosts file"
        elif "connection refused" in low:
            reason = "connection refused"
        elif "timed out" in low:
            reason = "connection timed out"
        elif "could not resolve" in low:
            reason = "unknown host name"
        else:
            reason = "connection failed"
        tried = shlex.join(["ssh", "-p", str(self.port), *(["-i", str(self.key)] if self.key else []), self.destination])
        hint = ""
        if self.emulated and self.host in ("127.0.0.1", "localhost", "::1"):
            hint = ("; `edgesep device setup pi-emulated` starts a local sshd for the emulated Pi; "
                    "the profile pi-emulated-local runs the same emulated Pi without ssh")  # fmt: skip
        return f"cannot reach {self.address} over ssh ({reason}: {text}); tried: {tried}{hint}"

    def _scp(self, sources: Sequence[str], target: str, *, what: str, recursive: bool = False) -> ProcessOutcome:
        outcome = run_process(self.scp_command(sources, target, recursive=recursive), timeout_s=_TRANSFER_TIMEOUT_S)
        if outcome.timed_out or outcome.returncode != 0:
            detail = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else "timed out"
            low = outcome.stderr.lower()
            error = SshLinkError if outcome.returncode == SSH_EXIT_CONNECTION or any(
                text in low for text in _LINK_FAILURES) else DeviceError
            raise error(f"{self.name} ({self.address}): {what} failed: {detail}; tried: scp to {target}")
        return outcome

    def _retrying(self, action, *args):
        """Call ``action(*args)``; on :class:`SshLinkError` try again up to ``retries`` more times."""
        for attempt in range(self.retries + 1):
            try:
                return action(*args)
            except SshLinkError as error:
                if attempt == self.retries:
                    raise SshLinkError(f"{error} (gave up after {attempt + 1} attempt{'s' if attempt else ''})") from None
                time.sleep(_RETRY_PAUSE_S * (attempt + 1))

    def run(
        self,
        models: Mapping[str, Path],
        inputs: np.ndarray | None,
        results_dir: Path,
        *,
        spec: RunSpec = RunSpec(),
        force: bool = False,
    ) -> dict[str, RunResults]:
        checked = check_models(models)
        tags = list(checked)
        results_dir = check_results_dir(results_dir, tags, force=force)
        remote_dir = self._retrying(self._make_remote_dir, tags)
        collected: dict[str, RunResults] = {}
        outcome: ProcessOutcome | None = None
        with tempfile.TemporaryDirectory(prefix="edgesep-ssh-") as tmp:
            staging = Path(tmp)
            try:
                inputs_path = stage_inputs(inputs, staging)
                self._retrying(self._push, checked, inputs_path, remote_dir)
                models_there = remote_models(remote_dir, checked)
                outcome = self._run_agent(remote_dir, models_there, has_inputs=inputs_path is not None, spec=spec)
            finally:
                with cleaned_up(lambda: self._cleanup(remote_dir)):
                    if outcome is None or outcome.returncode == SSH_EXIT_CONNECTION:
                        self._stop_agent(remote_dir)  # a lost link leaves the agent running: stop it, keep its last chunk
                    collected = self._pull(remote_dir, staging, results_dir, tags, force=force)
        where = f"{self.name} ({self.address})"
        if outcome.returncode == SSH_EXIT_CONNECTION:
            lost = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else "ssh exited with 255"
            raise DeviceRunError(
                f"{where}: connection lost during the run ({lost}); "
                f"partial results kept for {sorted(collected) or 'no model'}",
                results=collected,
            )
        if outcome.returncode == EXIT_NOT_FOUND:
            raise python_not_found(where, self.python, hint="install python3 there or set 'python' in the device profile",
                                   results=collected)  # fmt: skip
        return finish_run(agent_outcome(outcome, outcome.returncode), collected, tags, where=where, timeout_s=spec.timeout_s)

    def _make_remote_dir(self, tags: Sequence[str]) -> str:
        command, template = make_dir_command(self.workdir, tags)
        outcome = self._ssh(command, timeout_s=self.connect_timeout_s + 30, what="mktemp -d")
        remote_dir = made_dir(outcome.stdout) if outcome.returncode == 0 else None
        if remote_dir is None:
            detail = outcome.stderr.strip() or outcome.stdout.strip()
            raise DeviceError(
                f"{self.name} ({self.address}): cannot create a temp dir in {self.workdir}: "
                f"{' '.join(detail.split())}; tried: mktemp -d {template}"
            )
        return remote_dir

    def _push(self, models: Mapping[str, Path], inputs_path: Path | None, remote_dir: str) -> None:
        files = [str(AGENT_PATH)] + ([str(inputs_path)] if inputs_path else [])
        try:
            self._scp(files, self.remote(f"{remote_dir}/"), what="pushing the agent and inputs")
            for tag, path in models.items():
                self._scp([str(path)], self.remote(f"{remote_dir}/models/{tag}/"), what=f"pushing model {path.name}")
        except SshLinkError:
            raise
        except DeviceError as error:  # sftp hides ENOSPC behind a generic failure: say how much room is left
            raise DeviceError(f"{error}{self._free_space_note(remote_dir)}") from None

    def _free_space_note(self, remote_dir: str) -> str:
        try:
            outcome = run_process(self.ssh_command(f"df -Pk {shlex.quote(remote_dir)}"), timeout_s=self.connect_timeout_s + 30)
            free_kb = int(outcome.stdout.strip().splitlines()[-1].split()[3])
        except (DeviceError, IndexError, ValueError):
            return ""
        return f" ({free_kb} KiB free in {self.workdir}: the device's disk is full)" if free_kb < 1024 else ""

    def _run_agent(self, remote_dir: str, remote_models: Mapping[str, str], *, has_inputs: bool, spec: RunSpec) -> ProcessOutcome:
        args = agent_arguments(remote_models, inputs="inputs.npy" if has_inputs else None, out_dir="out", spec=spec)
        hard_limit = spec.timeout_s + TIMEOUT_GRACE_S
        agent = shlex.join([*self.python, "agent.py", *args])
        command = (
            f"cd {shlex.quote(remote_dir)} && echo $$ > agent.pid && "
            f"exec timeout -k 5 {hard_limit:g} {agent}"
        )
        return run_process(self.ssh_command(command), timeout_s=hard_limit + TIMEOUT_GRACE_S)

    def _pull(self, remote_dir: str, staging: Path, results_dir: Path, tags: Sequence[str], *, force: bool) -> dict[str, RunResults]:
        """Fetch ``<remote>/out`` (best effort: a dead link leaves what was already pulled)."""
        try:
            outcome = run_process(
                self.scp_command([self.remote(f"{remote_dir}/out")], str(staging), recursive=True),
                timeout_s=_TRANSFER_TIMEOUT_S,
            )
        except DeviceError:
            return {}
        if outcome.timed_out:
            return {}
        return collect_results(staging / "out", results_dir, tags, force=force)

    def _cleanup(self, remote_dir: str) -> None:
        """Stop the agent if it still runs and remove the temp dir (best effort: see ``cleaned_up``)."""
        run_process(self.ssh_command(cleanup_command(remote_dir)), timeout_s=self.connect_timeout_s + 30)

    def _stop_agent(self, remote_dir: str) -> None:
        try:
            run_process(self.ssh_command(stop_agent_script(shlex.quote(remote_dir))), timeout_s=self.connect_timeout_s + 30)
        except DeviceError:
            pass
