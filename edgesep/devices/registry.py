"""Resolve a device name, URL or profile file into a Device."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgesep.devices.base import Device
from edgesep.devices.profiles import DeviceProfile, load_profile
from edgesep.errors import DeviceError, InputError

DEFAULT_BENCHMARK_MODEL = "/data/local/tmp/benchmark_model"


def open_device(name_or_url: str, *, overrides: Mapping[str, Any] | None = None) -> Device:
    """``local``, a profile name (``rpi4``), ``ssh://user@host:port``, ``adb://SERIAL`` or a .toml path.

    ``overrides`` replaces profile keys (e.g. ``{"port": 2222, "key": "..."}``).
    """
    profile = parse_device(name_or_url)
    if overrides:
        profile = profile.with_overrides(overrides)
    return device_from_profile(profile)


def parse_device(name_or_url: str) -> DeviceProfile:
    text = str(name_or_url).strip()
    if not text:
        raise InputError("empty device name")
    if text.startswith("ssh://"):
        url = urlsplit(text)
        if not url.hostname:
            raise InputError(f"bad ssh URL {text!r}: expected ssh://user@host[:port]")
        try:
            port = url.port or 22
        except ValueError:
            raise InputError(f"bad port in {text!r}") from None
        return DeviceProfile(name=text, kind="ssh", host=url.hostname, user=url.username, port=port)
    if text.startswith("adb://"):
        serial = text[len("adb://") :].strip("/")
        return DeviceProfile(name=text, kind="adb", serial=serial, benchmark_model=DEFAULT_BENCHMARK_MODEL)
    if text == "local" and not text.endswith(".toml"):
        try:
            return load_profile("local")
        except InputError:
            return DeviceProfile(name="local", kind="local")
    return load_profile(text)


def device_from_profile(profile: DeviceProfile) -> Device:
    python = profile.python
    if profile.emulated and python is None:
        from edgesep.devices.emulated import default_rootfs_dir, python_command

        rootfs = Path(profile.rootfs).expanduser() if profile.rootfs else default_rootfs_dir()
        if profile.kind == "local" or profile.host in ("127.0.0.1", "localhost", "::1"):
            check_rootfs(rootfs)
        python = tuple(python_command(rootfs))
    if profile.kind == "local":
        from edgesep.devices.local import LocalDevice

        return LocalDevice(name=profile.name, python=python or (sys.executable,), emulated=profile.emulated)
    if profile.kind == "ssh":
        from edgesep.devices.ssh import SshDevice

        if not profile.host:
            raise InputError(f"{profile.source or profile.name}: an ssh device needs 'host'")
        return SshDevice(
            host=profile.host,
            user=profile.user,
            port=profile.port,
            key=Path(profile.key).expanduser() if profile.key else None,
            known_hosts=Path(profile.known_hosts).expanduser() if profile.known_hosts else None,
            python=python or ("python3",),
            workdir=profile.workdir or "/tmp",
            connect_timeout_s=profile.connect_timeout_s,
            retries=profile.retries,
            name=profile.name,
            emulated=profile.emulated,
        )
    from edgesep.devices.adb import AdbDevice

    return AdbDevice(
        serial=profile.serial or "",
        python=python,
        benchmark_model=profile.benchmark_model,
        workdir=profile.workdir or "/data/local/tmp",
        adb=profile.adb,
        name=profile.name,
        emulated=profile.emulated,
    )


def check_rootfs(rootfs: Path) -> None:
    """The emulated Pi needs qemu-aarch64-static and a built arm64 rootfs."""
    from edgesep.devices.emulated import QEMU, is_ready, qemu_available

    if not qemu_available():
        raise DeviceError(f"{QEMU} not found: install qemu-user-static to use the emulated Raspberry Pi")
    if not is_ready(rootfs):
        raise DeviceError(
            f"the arm64 rootfs is not built at {rootfs}: build it once (minutes) with python -c "
            "'from edgesep.devices.emulated import build_arm64_rootfs as b, default_rootfs_dir as d; b(d())'"
        )
