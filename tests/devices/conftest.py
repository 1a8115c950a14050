"""Session fixtures for the device tests: tiny .tflite models and an input batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from device_models import INPUT_SHAPE, build_tflite


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-models")
    return {"float": build_tflite(folder, int8=False), "int8": build_tflite(folder, int8=True)}


@pytest.fixture(scope="session")
def tiny_inputs() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((6, *INPUT_SHAPE[1:])).astype(np.float32)


@pytest.fixture(scope="session")
def arm64_rootfs() -> Path:
    """The session's Debian arm64 rootfs, ``$EDGESEP_ARM64_ROOTFS`` (tests/conftest.py points it away from the user's
    cache unless a ready one is there to reuse): reused when ready, else built (24 s here, minutes on a slow link)."""
    from edgesep.devices.emulated import QEMU, build_arm64_rootfs, default_rootfs_dir, find_tool, is_ready

    if find_tool(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (apt-get install qemu-user-static)")
    root = default_rootfs_dir()
    if not is_ready(root) and find_tool("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap) to build the arm64 rootfs")
    return build_arm64_rootfs(root)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (random port) with host-key checking against its own known_hosts."""
    from sshd_server import SSHD, start_sshd

    if not Path(SSHD).exists():
        pytest.skip("openssh-server (sshd) is not installed")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture()
def ssh_device(sshd):
    import sys

    from edgesep.devices.ssh import SshDevice

    return SshDevice(
        host="127.0.0.1", user=sshd.user, port=sshd.port, key=sshd.key, known_hosts=sshd.known_hosts,
        python=(sys.executable,), name="test-ssh",
    )  # fmt: skip


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory):
    """A private server of the REAL adb (/usr/bin/adb) on a free port, its keys in a temp HOME; killed at the end.

    Without adb the tests skip, except under CI=1 (.ci/run), where they fail.
    """
    from adb_real import start_adb_server

    server = start_adb_server(tmp_path_factory.mktemp("adb-home"))
    yield server
    server.kill()


@pytest.fixture()
def phones(adb_server, tmp_path, monkeypatch):
    """Start emulated phones (edgesep.devices.phone_emulator) and ``adb connect`` them through the private server."""
    from adb_real import PhoneFactory

    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    factory = PhoneFactory(adb_server, tmp_path)
    yield factory
    factory.close()
