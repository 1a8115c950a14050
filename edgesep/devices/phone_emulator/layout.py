"""The emulated phone's file system: a host folder standing for ``/`` of an arm64 Android phone.

``/data``, ``/sdcard`` and ``/system`` live under the phone folder; the file-sync service maps
EVERY device path into it (a push can never write outside it).  The shell is a host ``/bin/sh``
whose command line and output are rewritten: ``/data/...``, ``/sdcard/...`` and ``/system/...``
become ``PHONE/data/...`` and back.  Limits (it is not a jail): other absolute paths (``/proc``,
``/dev/null``, ``/bin/sh``, ``/tmp``) are the host's, a path assembled at run time from pieces
(``"/da""ta"``) is not rewritten, and the shell runs as the same user as the emulator.
The shell's PATH is only ``/system/bin``, as on a phone: links to the host tools a phone's toybox
has (:data:`TOYBOX`), ``getprop`` (arm64-v8a, SDK 34) and, with an arm64 rootfs, ``python3`` — the
rootfs's arm64 Python under qemu-aarch64-static (:func:`edgesep.devices.emulated.python_command`),
so the agent really runs arm64 TFLite kernels.  Without a rootfs there is no ``python3``.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgesep.devices.emulated import QEMU, python_command

MAPPED_TOPS = ("data", "sdcard", "system")
TOYBOX = (
    "sh", "ls", "cat", "cp", "mv", "rm", "ln", "mkdir", "rmdir", "mktemp", "chmod", "touch", "echo", "printf",
    "kill", "sleep", "timeout", "nproc", "grep", "sed", "head", "tail", "wc", "cut", "tr", "sort", "find", "stat",
    "date", "env", "id", "uname", "readlink", "dirname", "basename", "md5sum", "sha256sum", "du", "df", "ps", "true",
    "false", "test", "[", "xargs", "awk", "seq", "od", "tee", "which",
)  # fmt: skip
_DEVICE_PATH = re.compile(r"(?<![\w./~-])/(?:" + "|".join(MAPPED_TOPS) + r")(?=/|\b|$)")
DEFAULT_PROPERTIES = {
    "ro.product.name": "edgesep_phone",
    "ro.product.model": "edgesep emulated phone",
    "ro.product.device": "emulated_arm64",
    "ro.product.manufacturer": "edgesep",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a",
    "ro.build.version.sdk": "34",
    "ro.build.version.release": "14",
    "ro.serialno": "EDGESEP0001",
}


@dataclass(frozen=True)
class PhoneLayout:
    """The phone folder; ``to_host``/``to_device`` translate shell text, ``host_path`` a sync path."""

    root: Path
    properties: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PROPERTIES))

    def to_host(self, text: str) -> str:
        return _DEVICE_PATH.sub(lambda m: f"{self.root}{m.group(0)}", text)

    def to_device(self, text: str) -> str:
        return text.replace(f"{self.root}/", "/")

    def host_path(self, device_path: str) -> Path:
        """A sync path (always absolute on the phone) inside the phone folder; ``..`` cannot leave it."""
        normal = posixpath.normpath("/" + device_path.lstrip("/"))
        return self.root / normal.lstrip("/") if normal != "/" else self.root

    def shell_env(self) -> dict[str, str]:
        return {
            "PATH": str(self.root / "system" / "bin"),
            "HOME": str(self.root / "data" / "local" / "tmp"),
            "TMPDIR": str(self.root / "data" / "local" / "tmp"),
            "ANDROID_DATA": str(self.root / "data"),
            "ANDROID_ROOT": str(self.root / "system"),
            "LANG": "C.UTF-8",
        }


def make_phone(root: Path, *, rootfs: Path | None = None, properties: Mapping[str, str] | None = None) -> PhoneLayout:
    """Create (or refresh) the phone folder: /data/local/tmp, /sdcard, /system/bin/{getprop,python3}."""
    root = Path(root).expanduser().resolve()
    props = {**DEFAULT_PROPERTIES, **(properties or {})}
    for folder in ("data/local/tmp", "data/misc/adb", "sdcard", "system/bin"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    cases = "".join(f"  {shlex.quote(k)}) echo {shlex.quote(v)};;\n" for k, v in sorted(props.items()))
    listing = "".join(f"echo {shlex.quote(f'[{k}]: [{v}]')}\n" for k, v in sorted(props.items()))
    _write_script(
        root / "system" / "bin" / "getprop",
        f'#!/bin/sh\nif [ $# -eq 0 ]; then\n{listing}exit 0\nfi\ncase "$1" in\n{cases}  *) echo;;\nesac\n',
    )
    for tool in TOYBOX:
        link, found = root / "system" / "bin" / tool, shutil.which(tool)
        if found and not link.exists():
            link.symlink_to(found)
    python = root / "system" / "bin" / "python3"
    if rootfs is not None:
        # the phone's PATH has no qemu: the wrapper names env and qemu by their host paths
        command = [(shutil.which(word) or word) if word in ("env", QEMU) else word for word in python_command(Path(rootfs))]
        _write_script(python, f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
    elif python.exists():
        python.unlink()
    return PhoneLayout(root=root, properties=props)


def _write_script(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o755)
    os.replace(temporary, path)
