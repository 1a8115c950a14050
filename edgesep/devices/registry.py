"""Resolve a device name, URL or profile file into a Device."""

from __future__ import annotations

from edgesep.devices.base import Device
from edgesep.errors import InputError


def open_device(name_or_url: str) -> Device:
    """``local``, a profile name (``rpi4``), ``ssh://user@host:port``, ``adb://SERIAL`` or a .toml path."""
    from edgesep.devices.local import LocalDevice

    if name_or_url == "local":
        return LocalDevice()
    raise InputError(f"unknown device {name_or_url!r}")
