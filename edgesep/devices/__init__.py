"""Where models run: ``open_device("local" | profile name | ssh://user@host:port | adb://SERIAL | path.toml)``."""

from __future__ import annotations

from edgesep.devices.base import Device, DeviceRunError, RunSpec
from edgesep.devices.registry import open_device

__all__ = ["Device", "DeviceRunError", "RunSpec", "open_device"]
