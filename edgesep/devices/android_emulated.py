"""The emulated Android phone as an :class:`~edgesep.devices.setups.EmulatedSetup`: ``edgesep device setup
android-emulated`` builds or reuses the arm64 rootfs of :mod:`edgesep.devices.emulated` (the phone's ``python3``
runs the agent with it under qemu), starts the adbd emulator of :mod:`edgesep.devices.phone_emulator` in the
background on a free 127.0.0.1 port and connects the real ``adb`` client to it.

The emulator keeps its own files (state.json, the phone's file system, its log) in
``$EDGESEP_CACHE/android-emulated`` (:func:`~edgesep.devices.phone_emulator.background.phone_home`); the
``state_dir`` the setups registry passes is not used.  A running phone gives the profile its ``serial``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgesep.devices.emulated import QEMU, build_arm64_rootfs, default_rootfs_dir, require_tools
from edgesep.devices.phone_emulator import background
from edgesep.devices.setups import OnStep, SetupStatus

NAME = "android-emulated"
TOOLS = {"adb": "adb", QEMU: "qemu-user-static"}


def start(state_dir: Path, *, on_step: OnStep | None = None) -> SetupStatus:
    current = status(state_dir)
    if current.running:
        return replace(current, detail=f"already running, reused; {current.detail}")
    rootfs = default_rootfs_dir()
    check_tools(rootfs)
    rootfs = build_arm64_rootfs(rootfs, on_step=on_step)
    if on_step:
        on_step("starting the emulated phone (adbd emulator) on 127.0.0.1 and connecting adb", 0, None)
    background.launch(rootfs=rootfs)
    return status(state_dir)


def status(state_dir: Path) -> SetupStatus:
    phone = background.status()
    if phone is None:
        return SetupStatus(NAME, False, detail="not started")
    if not phone.running:
        return SetupStatus(NAME, False, phone.pid, phone.serial, detail=f"stale state in {background.state_file()}")
    return SetupStatus(NAME, True, phone.pid, phone.serial, {"serial": phone.serial},
                       detail=f"adb serial {phone.serial}, phone files in {phone.root}")  # fmt: skip


def stop(state_dir: Path) -> SetupStatus:
    phone = background.status()
    stopped = background.stop()
    detail = f"stopped the emulated phone (pid {phone.pid})" if stopped and phone else "was not running"
    return SetupStatus(NAME, False, detail=detail)


def check_tools(rootfs: Path) -> None:
    """One line naming every missing tool and the apt packages that bring them."""
    require_tools(TOOLS, rootfs, device=NAME)
