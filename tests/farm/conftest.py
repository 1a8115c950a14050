"""Fixtures for the farm tests: the arm64 rootfs of the emulated Pi."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgesep.devices.emulated import QEMU, build_arm64_rootfs, default_rootfs_dir


@pytest.fixture(scope="session")
def arm64_rootfs() -> Path:
    """Build (first time: minutes) or reuse the cached Debian arm64 rootfs of pi-emulated-local."""
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (apt-get install qemu-user-static)")
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        pytest.skip("debootstrap is not installed (apt-get install debootstrap) to build the arm64 rootfs")
    return build_arm64_rootfs(default_rootfs_dir())
