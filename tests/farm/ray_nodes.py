"""A real two-node Ray cluster on this machine for the farm tests: `ray start --head --block` and a second
`ray start --address=... --block` node, each in its own process group with its own free ports and a private
--temp-dir. Stopping sends SIGTERM to that `ray start` (it stops the processes of its node, whose workers exit
with their raylet); killing a node sends SIGKILL to its process group: only the processes started here."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import edgesep

RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 100 * 1024 * 1024
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RayNodes:
    temp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="esray-")))  # short: socket paths
    port: int = field(default_factory=free_port)
    client_port: int = field(default_factory=free_port)
    """The head's Ray client server: ``ray://127.0.0.1:<client_port>``."""
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    """The cluster's own auth token (Ray's token mode): nodes and drivers of this cluster only."""

    @property
    def auth_env(self) -> dict[str, str]:
        """What a driver of this cluster needs in its environment."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        repo = str(Path(edgesep.__file__).resolve().parents[1])  # the nodes' workers import this checkout's edgesep
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
        env.update(RAY_USAGE_STATS_ENABLED="0", TF_CPP_MIN_LOG_LEVEL="3", RAY_ADDRESS="", **self.auth_env)
        return env

    def start(self, name: str, *, devices: list[str], head: bool = False) -> None:
        ports = [
            "--node-manager-port",
            "--object-manager-port",
            "--metrics-export-port",
            "--runtime-env-agent-port",
            "--dashboard-agent-grpc-port",
            "--dashboard-agent-listen-port",
        ]
        argv = [
            RAY,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--temp-dir={self.temp / name}",
            f"--resources={json.dumps({f'device:{d}': 1 for d in devices})}",
        ]
        argv += [f"{option}={free_port()}" for option in ports]
        if head:
            argv += [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--ray-client-server-port={self.client_port}",
            ]
        else:
            argv += [f"--address={self.address}"]
        log = open(self.temp / f"{name}.log", "w")  # noqa: SIM115 - the node outlives this call
        self.nodes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in (self.temp / f"{name}.log").read_text():
            if self.nodes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start: {(self.temp / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def wait_for_devices(self, devices: list[str]) -> None:
        """Until the cluster offers every device (a started node registers with the head within seconds)."""
        code = (
            "import ray, sys, time\n"
            f"ray.init(address={self.address!r}, log_to_driver=False, logging_level='ERROR')\n"
            "deadline = time.monotonic() + 60\n"
            f"while not all(ray.cluster_resources().get('device:' + d) for d in {devices!r}):\n"
            "    if time.monotonic() > deadline: sys.exit('devices not offered: %s' % ray.cluster_resources())\n"
            "    time.sleep(0.5)\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, env=self.env(), timeout=120)

    def command_lines(self, name: str) -> list[str]:
        """The command lines of every process under node ``name``'s `ray start` (raylet, workers, their children)."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        root, lines = self.nodes[name].pid, []
        for pid in parents:
            ancestor = parents[pid]
            while ancestor not in (root, 0, 1) and ancestor in parents:
                ancestor = parents[ancestor]
            if ancestor == root:
                try:
                    lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:
                    continue
        return lines

    def kill(self, name: str) -> None:
        """The node dies: SIGKILL to its whole process group (raylet, agents; its workers exit with the raylet)."""
        process = self.nodes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in reversed(list(self.nodes)):  # workers first, the head last
            process = self.nodes.pop(name)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # anything of that node still running
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)
