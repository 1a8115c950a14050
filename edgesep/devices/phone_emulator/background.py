"""The emulated phone as a background process that outlives the command that started it.

``launch()`` starts ``python -m edgesep.devices.phone_emulator serve ...`` in its own session;
the server writes a state file (pid, port, serial, folders) once it listens, and ``launch``
then runs ``adb connect``.  ``status()`` reads the state file and checks the process and
the port; ``stop()`` ends the process and removes the file.  The ``android-emulated``
profile finds the running phone through :func:`running_serial`.

Files live in ``$EDGESEP_CACHE/android-emulated/`` (default ``~/.cache/edgesep``):
``state.json``, ``phone/`` (the phone's file system) and ``phone.log``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgesep.errors import DeviceError

NAME = "android-emulated"
_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class PhoneStatus:
    """What the state file says, and whether the phone still answers."""

    pid: int
    port: int
    serial: str
    root: str
    rootfs: str | None
    auth: str
    running: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def phone_home() -> Path:
    """``$EDGESEP_CACHE/android-emulated`` (default cache ``$XDG_CACHE_HOME/edgesep`` or ``~/.cache/edgesep``)."""
    cache = os.environ.get("EDGESEP_CACHE")
    base = Path(cache).expanduser() if cache else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesep"
    return base / NAME


def state_file() -> Path:
    return phone_home() / "state.json"


def write_state(status: PhoneStatus, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(status.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def status() -> PhoneStatus | None:
    """The emulated phone from the state file (``running`` checks its process and port), or None."""
    path = state_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["running"] = False
        recorded = PhoneStatus(**data)
    except (OSError, ValueError, TypeError):
        return None
    alive = _process_alive(recorded.pid) and _port_open(recorded.port)
    return PhoneStatus(**{**recorded.to_dict(), "running": alive})


def launch(
    *,
    root: Path | None = None,
    port: int = 0,
    auth: str = "none",
    rootfs: Path | None = None,
    adb: str = "adb",
    connect: bool = True,
) -> PhoneStatus:
    """Start the emulated phone in the background (or return the one already running) and ``adb connect`` it."""
    current = status()
    if current is not None and current.running:
        if connect:
            adb_connect(current.serial, adb=adb)
        return current
    home = phone_home()
    home.mkdir(parents=True, exist_ok=True)
    path = state_file()
    path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "edgesep.devices.phone_emulator", "serve", "--root", str(root or home / "phone"),
            "--port", str(port), "--auth", auth, "--state-file", str(path)]  # fmt: skip
    if rootfs is not None:
        argv += ["--rootfs", str(rootfs)]
    with open(home / "phone.log", "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        current = status()
        if current is not None and current.running:
            if connect:
                adb_connect(current.serial, adb=adb)
            return current
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = (home / "phone.log").read_text(errors="replace").strip().splitlines()[-1:]
    raise DeviceError(f"the emulated phone did not start (see {home / 'phone.log'}): {' '.join(tail) or 'no output'}")


def stop(*, adb: str = "adb") -> bool:
    """Stop the background phone; False when none was running."""
    current = status()
    if current is None:
        return False
    if current.running:
        subprocess.run([adb, "disconnect", current.serial], capture_output=True, timeout=30, check=False)
        os.kill(current.pid, signal.SIGTERM)
        for _ in range(50):
            _reap(current.pid)
            if not _process_alive(current.pid):
                break
            time.sleep(0.1)
    state_file().unlink(missing_ok=True)
    return current.running


def running_serial(*, adb: str = "adb") -> str:
    """The serial of the running emulated phone, connected to the adb server; a clear error when none runs."""
    current = status()
    if current is None or not current.running:
        raise DeviceError(
            f"the emulated Android phone is not running ({state_file()} "
            f"{'is stale' if current else 'does not exist'}): start it with `edgesep device setup android-emulated`"
        )
    adb_connect(current.serial, adb=adb)
    return current.serial


def adb_connect(serial: str, *, adb: str = "adb") -> None:
    """``adb connect SERIAL`` (idempotent); an error naming adb's answer when it does not connect."""
    try:
        done = subprocess.run([adb, "connect", serial], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise DeviceError(f"command not found: {adb} (install Android platform-tools: apt-get install adb)") from None
    except subprocess.TimeoutExpired:
        raise DeviceError(f"adb connect {serial} did not finish within 30 s") from None
    answer = (done.stdout + done.stderr).strip()
    if "connected to" not in answer or "failed" in answer or "cannot" in answer:
        raise DeviceError(f"adb connect {serial}: {answer.splitlines()[-1] if answer else 'no answer'}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the phone is our own child (else it lingers as a zombie that looks alive)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False
