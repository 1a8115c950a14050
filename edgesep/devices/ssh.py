"""The SSH device: a Raspberry Pi or any Linux board reached with the real ``ssh``/``scp`` binaries.

Every command is an argument list (no local shell); the one remote command
line of each step is built with ``shlex.quote``.  Host keys are checked
(``StrictHostKeyChecking=yes``, optionally against the profile's own
known_hosts file) and ``BatchMode=yes`` means a missing key fails instead of
prompting.  The device is a ``remote.Transport`` (shell / push / pull); the run itself
(temp folder, agent, partial results, cleanup) is ``remote.run_agent``.  A connection
failure before the agent starts (``mktemp``/push) is retried ``retries`` times; the
measured run itself is never re-run silently.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgesep.devices.base import ProcessOutcome, RunSpec, run_process
from edgesep.devices.remote import run_agent
from edgesep.errors import DeviceError, InputError
from edgesep.results import RunResults

T = TypeVar("T")
SSH_EXIT_CONNECTION = 255
_TRANSFER_TIMEOUT_S = 300.0
_RETRY_PAUSE_S = 1.0
_HOST = re.compile(r"^[A-Za-z0-9_:][A-Za-z0-9_.:%-]*$")  # names, IPv4, IPv6 (no brackets); never "-..."
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_LINK_FAILURE = re.compile(r"connection (closed|reset|refused|timed out)|lost connection|broken pipe|kex_exchange_identification")


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
            transient = _LINK_FAILURE.search(outcome.stderr.lower()) is not None
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

    def _scp(self, sources: Sequence[str], target: str, *, what: str) -> ProcessOutcome:
        outcome = run_process(self.scp_command(sources, target), timeout_s=_TRANSFER_TIMEOUT_S)
        if outcome.timed_out or outcome.returncode != 0:
            detail = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else "timed out"
            link = outcome.returncode == SSH_EXIT_CONNECTION or _LINK_FAILURE.search(outcome.stderr.lower())
            error = SshLinkError if link else DeviceError
            raise error(f"{self.name} ({self.address}): {what} failed: {detail}; tried: scp to {target}")
        return outcome

    def _retrying(self, action: Callable[[], T]) -> T:
        """Call ``action()``; on :class:`SshLinkError` try again up to ``retries`` more times."""
        for attempt in range(self.retries + 1):
            try:
                return action()
            except SshLinkError as error:
                if attempt == self.retries:
                    raise SshLinkError(f"{error} (gave up after {attempt + 1} attempt{'s' if attempt else ''})") from None
                time.sleep(_RETRY_PAUSE_S * (attempt + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    # the Transport of edgesep.devices.remote

    @property
    def where(self) -> str:
        return f"{self.name} ({self.address})"

    def shell(self, command: str, *, timeout_s: float | None = None, what: str | None = None) -> ProcessOutcome:
        """``ssh ... -- command``; with ``what`` a link failure raises (retried ``retries`` times)."""
        timeout_s = self.connect_timeout_s + 30 if timeout_s is None else timeout_s
        if what is None:
            return run_process(self.ssh_command(command), timeout_s=timeout_s)
        return self._retrying(lambda: self._ssh(command, timeout_s=timeout_s, what=what))

    def push(self, sources: Sequence[Path], folder: str, *, what: str) -> None:
        try:
            files = [str(source) for source in sources]
            self._retrying(lambda: self._scp(files, self.remote(f"{folder}/"), what=what))
        except SshLinkError:
            raise
        except DeviceError as error:  # sftp hides ENOSPC behind a generic failure: say how much room is left
            raise DeviceError(f"{error}{self._free_space_note(folder)}") from None

    def pull(self, remote: str, local_dir: Path) -> bool:
        """``scp -r`` (best effort: a dead link leaves what was already pulled)."""
        command = self.scp_command([self.remote(remote)], str(local_dir), recursive=True)
        try:
            outcome = run_process(command, timeout_s=_TRANSFER_TIMEOUT_S)
        except DeviceError:
            return False
        return not outcome.timed_out

    def check_online(self) -> None:
        """Nothing to check apart: making the run's folder is the first connection (retried)."""

    def reconnect(self) -> None:
        """Each ssh command is a new connection."""

    def _free_space_note(self, folder: str) -> str:
        try:
            free_kb = int(self.shell(f"df -Pk {shlex.quote(folder)}").stdout.strip().splitlines()[-1].split()[3])
        except (DeviceError, IndexError, ValueError):
            return ""
        return f" ({free_kb} KiB free in {self.workdir}: the device's disk is full)" if free_kb < 1024 else ""

    def run(
        self,
        models: Mapping[str, Path],
        inputs: np.ndarray | None,
        results_dir: Path,
        *,
        spec: RunSpec = RunSpec(),
        force: bool = False,
    ) -> dict[str, RunResults]:
        hint = "install python3 there or set 'python' in the device profile"
        return run_agent(self, models, inputs, results_dir, python=self.python, spec=spec, force=force, install_hint=hint)
