"""Emulated devices that run on this machine and must be started first: ``edgesep device setup NAME``.

A setup is a module with three functions (the :class:`EmulatedSetup` protocol), each given its own state
folder ``<edgesep cache>/devices/NAME`` (``$EDGESEP_CACHE``, else ``~/.cache/edgesep``):

- ``start(state_dir, *, on_step=None)`` builds or reuses what it needs, starts it in the background and
  returns its :class:`SetupStatus`; when it already runs it returns that status (``detail`` says so);
- ``status(state_dir)`` tells whether it runs, changing nothing;
- ``stop(state_dir)`` stops it and removes ``state_dir``.

A running setup's ``SetupStatus.profile`` holds the device-profile keys (host, port, key, ...) that a profile
with ``setup = "NAME"`` (``edgesep/devices/builtin/pi-emulated.toml``) takes when it is opened.  Adding a setup:
write its module and add one line to :data:`SETUPS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from edgesep.cache import cache_dir
from edgesep.errors import DeviceError, InputError

SETUPS: dict[str, str] = {
    "android-emulated": "edgesep.devices.android_emulated",
    "pi-emulated": "edgesep.devices.pi_emulated",
}
"""Setup name -> the module that implements it (imported only when used)."""

OnStep = Callable[[str, int, int | None], None]
"""``on_step(description, done, total)`` for a progress bar; ``total`` is None while the length is unknown."""


@dataclass(frozen=True)
class SetupStatus:
    name: str
    running: bool
    pid: int | None = None
    address: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "profile": dict(self.profile)}


class EmulatedSetup(Protocol):
    def start(self, state_dir: Path, *, on_step: OnStep | None = None) -> SetupStatus: ...

    def status(self, state_dir: Path) -> SetupStatus: ...

    def stop(self, state_dir: Path) -> SetupStatus: ...


def setup_names() -> list[str]:
    return sorted(SETUPS)


def load_setup(name: str) -> EmulatedSetup:
    if name not in SETUPS:
        raise InputError(f"no emulated device setup named {name!r}: use one of {', '.join(setup_names())}")
    return cast(EmulatedSetup, importlib.import_module(SETUPS[name]))


def state_dir(name: str) -> Path:
    """Where setup ``name`` keeps its keys, config, pid and port: ``<edgesep cache>/devices/<name>``."""
    return cache_dir() / "devices" / name


def start(name: str, *, on_step: OnStep | None = None) -> SetupStatus:
    return load_setup(name).start(state_dir(name), on_step=on_step)


def status(name: str) -> SetupStatus:
    return load_setup(name).status(state_dir(name))


def stop(name: str) -> SetupStatus:
    return load_setup(name).stop(state_dir(name))


def running_profile(name: str, *, device: str) -> Mapping[str, Any]:
    """The profile keys of the running setup ``name``, or one line telling how to start it."""
    current = status(name)
    if not current.running:
        why = f" ({current.detail})" if current.detail else ""
        raise DeviceError(f"device {device!r} is not running{why}: start it with `edgesep device setup {name}`")
    return current.profile
