"""An EMULATOR of an Android phone's adbd (the device side of ADB over TCP), for the real ``adb`` client.

Not a phone: a host folder stands for its file system and a host ``/bin/sh`` for its shell
(see :mod:`.layout` for the limits); its ``python3`` is the arm64 Python of the emulated Pi's
rootfs under qemu, so TFLite runs arm64 kernels.  Latency measured on it is labelled EMULATED.
"""

from edgesep.devices.phone_emulator.server import AuthMode, EmulatedPhone, start_emulated_phone

__all__ = ["AuthMode", "EmulatedPhone", "start_emulated_phone"]
