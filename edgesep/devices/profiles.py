"""Device profiles: TOML files shipped in the package (``edgesep/devices/builtin/rpi4.toml`` ..., the repository's
top-level ``devices/`` links there), found with importlib.resources so a wheel install has them too."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from edgesep.errors import ConfigError, InputError

KINDS = ("local", "ssh", "adb")


@dataclass(frozen=True)
class DeviceProfile:
    """One device profile; ``kind`` picks the transport, the other keys configure it."""

    name: str
    kind: str
    description: str = ""
    host: str | None = None
    user: str | None = None
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None
    python: tuple[str, ...] | None = None
    workdir: str | None = None
    connect_timeout_s: float = 10.0
    retries: int = 1
    serial: str | None = None
    benchmark_model: str | None = None
    adb: str = "adb"
    emulated: bool = False
    rootfs: str | None = None
    setup: str | None = None
    """An emulated device started by ``edgesep device setup NAME``: its host, port, key... come from there."""
    expect: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> DeviceProfile:
        where = source or "device profile"
        known = {f.name: f for f in fields(cls) if f.name != "source"}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        for required in ("name", "kind"):
            if required not in data:
                raise ConfigError(f"{where}: missing key {required!r}")
        values = dict(data)
        if values["kind"] not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {values['kind']!r}")
        _expect_type(values, "port", int, where)
        if isinstance(values.get("port"), int) and not 1 <= values["port"] <= 65535:
            raise ConfigError(f"{where}: 'port' must be between 1 and 65535, got {values['port']}")
        _expect_type(values, "connect_timeout_s", (int, float), where)
        _expect_type(values, "emulated", bool, where)
        _expect_type(values, "retries", int, where)
        if isinstance(values.get("retries"), int) and not 0 <= values["retries"] <= 10:
            raise ConfigError(f"{where}: 'retries' must be between 0 and 10, got {values['retries']}")
        for text_key in ("name", "description", "host", "user", "key", "known_hosts", "workdir", "serial",
                         "benchmark_model", "adb", "rootfs", "setup"):  # fmt: skip
            _expect_type(values, text_key, str, where)
        if "python" in values:
            python = values["python"]
            if isinstance(python, str):
                python = [python]
            if not isinstance(python, list) or not python or not all(isinstance(p, str) for p in python):
                raise ConfigError(f"{where}: 'python' must be a command list like [\"python3\"]")
            values["python"] = tuple(python)
        if "expect" in values and not isinstance(values["expect"], dict):
            raise ConfigError(f"{where}: [expect] must be a table")
        return cls(**values, source=source)

    def with_overrides(self, overrides: Mapping[str, Any]) -> DeviceProfile:
        merged = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}
        merged.update(overrides)
        if isinstance(merged.get("python"), tuple):
            merged["python"] = list(merged["python"])
        for key in ("key", "known_hosts", "rootfs"):
            if isinstance(merged.get(key), Path):
                merged[key] = str(merged[key])
        return DeviceProfile.from_dict({k: v for k, v in merged.items() if v is not None}, source=self.source)


def _expect_type(values: Mapping[str, Any], key: str, kind, where: str) -> None:
    if key in values and values[key] is not None and not isinstance(values[key], kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: {key!r} must be {expected}, got {type(values[key]).__name__}")


def profiles_dir() -> Traversable:
    """``$EDGESEP_DEVICES_DIR`` or the profiles shipped as package data (``edgesep/devices/builtin``)."""
    override = os.environ.get("EDGESEP_DEVICES_DIR")
    if override:
        return Path(override).expanduser()
    return resources.files("edgesep.devices") / "builtin"


def available_profiles() -> list[str]:
    folder = profiles_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | os.PathLike) -> DeviceProfile:
    """A profile by name (``rpi4``) from :func:`profiles_dir`, or a path to a .toml file."""
    text = str(name_or_path)
    path: Traversable = Path(text).expanduser()
    if not (text.endswith(".toml") or path.is_file()):
        path = profiles_dir() / f"{text}.toml"
        if not path.is_file():
            names = ", ".join(available_profiles()) or "none"
            raise InputError(
                f"unknown device {text!r}: use local, a profile ({names}), ssh://user@host:port, adb://SERIAL or a path to a .toml"
            )
    if not path.is_file():
        raise InputError(f"device profile not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return DeviceProfile.from_dict(data, source=str(path))
