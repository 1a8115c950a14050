"""Helpers for the tests that run the REAL adb client and server against edgesep's emulated phone."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edgesep.devices.phone_emulator import AuthMode, EmulatedPhone, start_emulated_phone


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AdbServer:
    adb: str
    port: int
    home: Path

    @property
    def env(self) -> dict[str, str]:
        # HOME: the server's key pair (.android/adbkey); TMPDIR: its log (adb.UID.log), both private to the tests
        return {**os.environ, "ANDROID_ADB_SERVER_PORT": str(self.port), "HOME": str(self.home), "TMPDIR": str(self.home)}

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([self.adb, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def run_bytes(self, *args: str, timeout: float = 30) -> bytes:
        done = subprocess.run([self.adb, *args], env=self.env, capture_output=True, timeout=timeout)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def kill(self) -> None:
        self.run("kill-server")


def start_adb_server(home: Path) -> AdbServer:
    adb = shutil.which("adb")
    if adb is None:
        message = "the real adb client is not installed (apt-get install adb)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI=1 requires the real-adb tests")
        pytest.skip(message)
    home.mkdir(parents=True, exist_ok=True)
    server = AdbServer(adb=adb, port=free_port(), home=home)
    started = server.run("start-server")
    assert started.returncode == 0, started.stderr
    return server


@dataclass
class PhoneFactory:
    server: AdbServer
    folder: Path
    started: list[EmulatedPhone] = field(default_factory=list)
    waiting: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str = "phone", *, auth: AuthMode = AuthMode.NONE, connect: bool = True, **options) -> EmulatedPhone:
        phone = start_emulated_phone(self.folder / name, auth=auth, **options)
        self.started.append(phone)
        if connect and auth is AuthMode.SILENT:  # adb connect would wait 10 s for the CNXN that never comes
            self.waiting.append(subprocess.Popen([self.server.adb, "connect", phone.serial], env=self.server.env,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            for _ in range(100):
                if f"{phone.serial}\toffline" in self.server.run("devices").stdout:
                    break
                time.sleep(0.05)
        elif connect:
            self.server.run("connect", phone.serial)
        return phone

    def close(self) -> None:
        for process in self.waiting:
            process.kill()
            process.wait()
        for phone in self.started:
            self.server.run("disconnect", phone.serial)
            phone.stop()
