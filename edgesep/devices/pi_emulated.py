"""The emulated Raspberry Pi over ssh: the arm64 rootfs of :mod:`edgesep.devices.emulated` behind a user-level
sshd on 127.0.0.1 (an :class:`~edgesep.devices.setups.EmulatedSetup`).

``start`` builds or reuses the rootfs, makes a host key and a client key (``ssh-keygen -t ed25519``), writes an
sshd_config that lets in only that key, only for the current user, only on a free loopback port, and starts
``sshd -D -e -f <that config>`` detached in its own session.  ``known_hosts`` holds the host key, so the client
keeps ``StrictHostKeyChecking=yes``.  Nothing outside ``state_dir`` changes: not the system's sshd, not
``~/.ssh`` (as root, sshd needs its privilege-separation folder /run/sshd, which is created if missing).
``start`` returns only after a real ``ssh`` login ran the arm64 Python and it answered ``aarch64``.

``state_dir`` holds: ``sshd_config``, ``host_ed25519``, ``client_ed25519`` (+ ``.pub``), ``authorized_keys``,
``known_hosts``, ``sshd.pid``, ``sshd.log`` and ``state.json`` (pid, port, user, key, known_hosts, rootfs).
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgesep.devices.base import run_process
from edgesep.devices.emulated import QEMU, build_arm64_rootfs, default_rootfs_dir, find_tool, python_command, require_tools
from edgesep.devices.setups import OnStep, SetupStatus
from edgesep.devices.ssh import SshDevice
from edgesep.errors import DeviceError
from edgesep.fileio import write_json

NAME = "pi-emulated"
HOST = "127.0.0.1"
TOOLS = {QEMU: "qemu-user-static", "sshd": "openssh-server", "ssh-keygen": "openssh-client", "ssh": "openssh-client"}
STATE_FILE = "state.json"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
CHECK_TIMEOUT_S = 120.0  # the first start of the arm64 Python under qemu
PORT_ATTEMPTS = 3


def start(state_dir: Path, *, on_step: OnStep | None = None) -> SetupStatus:
    current = status(state_dir)
    if current.running:
        return replace(current, detail=f"already running, reused; {current.detail}")
    rootfs = default_rootfs_dir()
    check_tools(rootfs)
    rootfs = build_arm64_rootfs(rootfs, on_step=on_step)
    if on_step:
        on_step(f"starting sshd for the emulated Pi on {HOST}", 0, None)
    if state_dir.exists():
        shutil.rmtree(state_dir)  # what a dead sshd left
    state_dir.mkdir(parents=True, mode=0o700)
    user = getpass.getuser()
    for name in ("host_ed25519", "client_ed25519"):
        _keygen(state_dir / name)
    (state_dir / "authorized_keys").write_text((state_dir / "client_ed25519.pub").read_text(), encoding="utf-8")
    pid, port = _launch_sshd(state_dir, user=user)
    host_key = (state_dir / "host_ed25519.pub").read_text(encoding="utf-8").split()
    (state_dir / "known_hosts").write_text(f"[{HOST}]:{port} {host_key[0]} {host_key[1]}\n", encoding="utf-8")
    state = {"pid": pid, "port": port, "user": user, "key": str(state_dir / "client_ed25519"),
             "known_hosts": str(state_dir / "known_hosts"), "rootfs": str(rootfs),
             "sshd_config": str(state_dir / "sshd_config"), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    write_json(state_dir / STATE_FILE, state, force=True)
    if on_step:
        on_step("checking: ssh login, then the arm64 Python under qemu", 0, None)
    try:
        machine = _check_login(state, rootfs=rootfs)
    except DeviceError:
        stop(state_dir)
        raise
    return replace(status(state_dir), detail=f"started; the arm64 Python answered {machine!r}")


def status(state_dir: Path) -> SetupStatus:
    state = _read_state(state_dir)
    if state is None:
        return SetupStatus(NAME, False)
    pid, port = int(state["pid"]), int(state["port"])
    if not _is_our_sshd(pid, state["sshd_config"]):
        return SetupStatus(NAME, False, detail=f"its sshd (pid {pid}) has exited")
    if not _accepts(port):
        return SetupStatus(NAME, False, pid=pid, detail=f"its sshd (pid {pid}) does not accept connections on port {port}")
    profile = {"host": HOST, "port": port, "user": state["user"], "key": state["key"],
               "known_hosts": state["known_hosts"], "rootfs": state["rootfs"]}  # fmt: skip
    return SetupStatus(NAME, True, pid=pid, address=f"{state['user']}@{HOST}:{port}", profile=profile,
                       detail=f"arm64 rootfs {state['rootfs']}")  # fmt: skip


def stop(state_dir: Path) -> SetupStatus:
    state = _read_state(state_dir)
    detail = "was not running"
    if state is not None and _is_our_sshd(int(state["pid"]), state["sshd_config"]):
        _terminate(int(state["pid"]))
        detail = f"stopped its sshd (pid {state['pid']})"
    if state_dir.exists():
        shutil.rmtree(state_dir)
    return SetupStatus(NAME, False, detail=detail)


def check_tools(rootfs: Path) -> None:
    """One line naming every missing tool and the apt packages that bring them."""
    require_tools(TOOLS, rootfs, device=NAME)


def sshd_config_text(state_dir: Path, *, port: int, user: str) -> str:
    """An sshd that lets in one key for one user on the loopback only: no passwords, no forwarding."""
    if '"' in str(state_dir) or "\n" in str(state_dir):
        raise DeviceError(f"the edgesep cache path cannot hold '\"' or a newline for sshd_config: {state_dir}")
    return "\n".join([
        f"Port {port}",
        f"ListenAddress {HOST}",
        f'HostKey "{state_dir / "host_ed25519"}"',
        f'PidFile "{state_dir / "sshd.pid"}"',
        f'AuthorizedKeysFile "{state_dir / "authorized_keys"}"',
        f"AllowUsers {user}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
    ])  # fmt: skip


def _keygen(path: Path) -> None:
    done = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"edgesep-{NAME}", "-f", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise DeviceError(f"ssh-keygen failed for {path}: {done.stderr.strip() or done.returncode}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _launch_sshd(state_dir: Path, *, user: str) -> tuple[int, int]:
    """Start sshd on a free port (another free one if that was taken meanwhile); returns (pid, port)."""
    sshd = find_tool("sshd")
    assert sshd is not None, "check_tools() found sshd"
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    config, log = state_dir / "sshd_config", state_dir / "sshd.log"
    error = ""
    for _ in range(PORT_ATTEMPTS):
        port = _free_port()
        config.write_text(sshd_config_text(state_dir, port=port, user=user), encoding="utf-8")
        with open(log, "ab") as log_file:
            process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=log_file, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if (state_dir / "sshd.pid").is_file() and _accepts(port):
                return process.pid, port
            time.sleep(0.05)
        if process.poll() is None:
            _terminate(process.pid)
            raise DeviceError(f"sshd did not accept connections on {HOST}:{port} within {START_TIMEOUT_S:g} s; see {log}")
        error = _last_line(log)
        if "address already in use" not in error.lower():
            break
    raise DeviceError(f"sshd exited at start: {error or 'no message'} (log: {log}, config: {config})")


def _check_login(state: dict[str, Any], *, rootfs: Path) -> str:
    """A real ssh login runs the arm64 Python; returns its platform.machine()."""

    device = SshDevice(host=HOST, user=state["user"], port=state["port"], key=Path(state["key"]),
                       known_hosts=Path(state["known_hosts"]), name=NAME)  # fmt: skip
    probe = shlex.join([*python_command(rootfs), "-c", "import platform; print(platform.machine())"])
    outcome = run_process(device.ssh_command(probe), timeout_s=CHECK_TIMEOUT_S)
    answer = outcome.stdout.strip().splitlines()[-1] if outcome.stdout.strip() else ""
    if outcome.timed_out or outcome.returncode != 0 or answer != "aarch64":
        detail = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else f"exit {outcome.returncode}"
        raise DeviceError(f"the emulated Pi's sshd started on {HOST}:{state['port']} but the check failed: {detail}; "
                          f"tried: {shlex.join(device.ssh_command(probe)[:-1])} -- <arm64 python>")  # fmt: skip
    return answer


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    required = ("pid", "port", "user", "key", "known_hosts", "rootfs", "sshd_config")
    return state if isinstance(state, dict) and all(key in state for key in required) else None


def _is_our_sshd(pid: int, config: str) -> bool:
    """``pid`` is alive (not a zombie) and is the sshd started with ``config`` (not a recycled pid).

    sshd rewrites its title to ``sshd: /usr/sbin/sshd -D -e -f CONFIG [listener] ...``: match ``CONFIG`` as a word.
    """
    if _state_letter(pid) in ("Z", "X"):
        return False
    try:
        title = Path("/proc", str(pid), "cmdline").read_bytes().replace(b"\0", b" ") + b" "
    except OSError:
        return False
    return b"sshd" in title and b" " + os.fsencode(config) + b" " in title


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def _terminate(pid: int) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; reaps it when it is this process's child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:  # not our child: watch /proc instead
                if _state_letter(pid) in ("Z", "X"):
                    return
            time.sleep(0.05)


def _state_letter(pid: int) -> str:
    try:
        return Path("/proc", str(pid), "stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return "X"


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
