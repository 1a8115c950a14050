"""Resolve a device name, URL or profile file into a Device."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgesep.devices.adb import AdbDevice
from edgesep.devices.base import Device
from edgesep.devices.emulated import QEMU, default_rootfs_dir, is_ready, python_command, qemu_available
from edgesep.devices.local import LocalDevice
from edgesep.devices.phone_emulator.background import adb_connect, running_serial
from edgesep.devices.profiles import DeviceProfile, load_profile
from edgesep.devices.setups import running_profile
from edgesep.devices.ssh import SshDevice
from edgesep.errors import DeviceError, InputError

DEFAULT_BENCHMARK_MODEL = "/data/local/tmp/benchmark_model"


ADB_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")  # USB serials and host:port (adb connect)


def open_device(name_or_url: str, *, overrides: Mapping[str, Any] | None = None) -> Device:
    """``local``, a profile name (``rpi4``), ``ssh://user@host:port``, ``adb://SERIAL`` or a .toml path.

    ``overrides`` replaces profile keys (e.g. ``{"port": 2222, "key": "..."}``).
    """
    profile = with_running_setup(parse_device(name_or_url))
    if overrides:
        profile = profile.with_overrides(overrides)
    return device_from_profile(profile)


def named_device(device: str | Device) -> tuple[str, Device]:
    """(the name given, the Device) for a device name/URL/profile path (opened here) or a Device (passed through)."""
    if isinstance(device, str):
        return device, open_device(device)
    return getattr(device, "name", type(device).__name__), device


def parse_device(name_or_url: str) -> DeviceProfile:
    text = str(name_or_url).strip()
    if not text:
        raise InputError("empty device name")
    if text.startswith("ssh://"):
        try:
            url = urlsplit(text)
            hostname, port = url.hostname, url.port
        except ValueError as error:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
            raise InputError(f"bad ssh URL {text!r}: {error}; expected ssh://user@host[:port] (IPv6: [addr])") from None
        if not hostname:
            raise InputError(f"bad ssh URL {text!r}: expected ssh://user@host[:port]")
        if port is not None and not 1 <= port <= 65535:
            raise InputError(f"bad port {port} in {text!r}: use 1-65535 (or leave it out for 22)")
        return DeviceProfile(name=text, kind="ssh", host=hostname, user=url.username, port=22 if port is None else port)
    if text.startswith("adb://"):
        serial = text[len("adb://") :].strip("/")
        if serial and not ADB_SERIAL.fullmatch(serial):
            raise InputError(
                f"bad adb serial {serial!r} in {text!r}: adb serials are letters, digits and . _ : - "
                "(as 'adb devices' lists them), not starting with '-'"
            )
        return DeviceProfile(name=text, kind="adb", serial=serial, benchmark_model=DEFAULT_BENCHMARK_MODEL)
    if text == "local" and not text.endswith(".toml"):
        try:
            return load_profile("local")
        except InputError:
            return DeviceProfile(name="local", kind="local")
    return load_profile(text)


def with_running_setup(profile: DeviceProfile) -> DeviceProfile:
    """A profile with ``setup = "NAME"`` takes host, port, key... from that running emulated device
    (``edgesep device setup NAME``); not running: one line saying how to start it."""
    if profile.setup is None:
        return profile

    return replace(profile.with_overrides(running_profile(profile.setup, device=profile.name)), setup=None)


def device_from_profile(profile: DeviceProfile) -> Device:
    profile = with_running_setup(profile)
    python = profile.python
    if profile.emulated and python is None:
        rootfs = Path(profile.rootfs).expanduser() if profile.rootfs else default_rootfs_dir()
        if profile.kind == "local" or profile.host in ("127.0.0.1", "localhost", "::1"):
            check_rootfs(rootfs)
        python = tuple(python_command(rootfs))
    if profile.kind == "local":
        return LocalDevice(name=profile.name, python=python or (sys.executable,), emulated=profile.emulated)
    if profile.kind == "ssh":
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

    if profile.serial and not ADB_SERIAL.fullmatch(profile.serial):
        raise InputError(f"{profile.source or profile.name}: bad adb serial {profile.serial!r} (letters, digits and . _ : -)")
    serial = profile.serial or ""
    if profile.emulated:  # android-emulated: the emulated phone on 127.0.0.1; (re)connect the adb server to it
        if serial:
            adb_connect(serial, adb=profile.adb)
        else:
            serial = running_serial(adb=profile.adb)
    return AdbDevice(
        serial=serial,
        python=python,
        benchmark_model=profile.benchmark_model,
        workdir=profile.workdir or "/data/local/tmp",
        adb=profile.adb,
        name=profile.name,
        emulated=profile.emulated,
    )


def check_rootfs(rootfs: Path) -> None:
    """The emulated Pi needs qemu-aarch64-static and a built arm64 rootfs."""

    if not qemu_available():
        raise DeviceError(f"{QEMU} not found: install qemu-user-static to use the emulated Raspberry Pi")
    if not is_ready(rootfs):
        raise DeviceError(
            f"the arm64 rootfs is not built at {rootfs}: build it once with `edgesep device setup pi-emulated` "
            "(it also starts the ssh side)"
        )
