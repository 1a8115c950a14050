"""An emulated Raspberry Pi: a Debian arm64 userland run by ``qemu-aarch64-static``.

A Pi runs Debian arm64.  This host can run that userland without binfmt by
calling ``qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11`` directly, so the
agent runs with the real arm64 Python, numpy and TFLite kernels.  The rootfs
(344 MB) is built once and cached in :func:`default_rootfs_dir` (24 s on 2 cores
with a nearby Debian mirror, a few minutes over a slow link):

1. ``debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 bookworm ROOT MIRROR``
   (first stage only: downloads the .debs and unpacks the essential ones);
2. ``dpkg-deb -x`` every downloaded .deb into ROOT (this gives python3.11),
   then ROOT/lib, bin, sbin are symlinks into usr/ again (Debian's merged /usr);
3. ``pip download --no-deps --only-binary=:all: --platform manylinux_2_17_aarch64
   --python-version 3.11 numpy==2.2.6 ai-edge-litert==1.4.0`` and unzip the wheels
   into ROOT/opt/edgesep-site (the PYTHONPATH of the qemu line).

ai-edge-litert 2.x's aarch64 wheel (manylinux_2_27) segfaults in
``Interpreter.__init__`` under qemu 7.2, hence the 1.4.0 pin.  Emulated latency is
not a Pi's latency: results from this device carry ``emulated: true``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from edgesep.cache import cache_dir
from edgesep.errors import DeviceError

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"
PYTHON_VERSION = "3.11"
WHEELS = ("numpy==2.2.6", "ai-edge-litert==1.4.0")
WHEEL_PLATFORM = "manylinux_2_17_aarch64"
SITE_DIR = "opt/edgesep-site"  # inside ROOT
READY_MARKER = ".edgesep-rootfs-ready"
QEMU = "qemu-aarch64-static"


def default_rootfs_dir() -> Path:
    """``$EDGESEP_ARM64_ROOTFS``, else ``arm64-rootfs`` in the edgesep cache (``$EDGESEP_CACHE``, ``~/.cache/edgesep``)."""
    override = os.environ.get("EDGESEP_ARM64_ROOTFS")
    if override:
        return Path(override).expanduser()
    return cache_dir() / "arm64-rootfs"


def debootstrap_command(root: Path, *, mirror: str = DEBIAN_MIRROR, suite: str = DEBIAN_SUITE) -> list[str]:
    return [
        "debootstrap",
        "--foreign",
        "--arch=arm64",
        "--variant=minbase",
        "--include=python3",
        suite,
        str(root),
        mirror,
    ]


def wheel_download_command(dest: Path, *, python: str = sys.executable, wheels: tuple[str, ...] = WHEELS) -> list[str]:
    return [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        WHEEL_PLATFORM,
        "--python-version",
        PYTHON_VERSION,
        "--dest",
        str(dest),
        *wheels,
    ]


def python_command(root: Path) -> list[str]:
    """The command line that runs the arm64 Python of ``root`` on this host."""
    root = Path(root).resolve()
    return [
        "env",
        f"PYTHONPATH={root / SITE_DIR}",
        "EDGESEP_EMULATED=1",
        QEMU,
        "-L",
        str(root),
        str(root / "usr" / "bin" / f"python{PYTHON_VERSION}"),
    ]


def is_ready(root: Path) -> bool:
    return (Path(root) / READY_MARKER).is_file()


def qemu_available() -> bool:
    return find_tool(QEMU) is not None


BuildProgress = Callable[[str, int, int | None], None]
"""``on_step(description, done, total)``: what the build does now; ``total`` None while its length is unknown."""


def build_arm64_rootfs(
    root: Path, *, mirror: str = DEBIAN_MIRROR, python: str = sys.executable, on_step: BuildProgress | None = None
) -> Path:
    """Build (or reuse) the arm64 rootfs at ``root``; safe to call from several processes.

    The build happens in ``<root>.partial`` and is renamed onto ``root`` when it
    works, so an interrupted build never looks ready.  ``on_step`` hears each step
    (debootstrap, one call per unpacked .deb, the wheels) for a progress bar.
    """
    root = Path(root).expanduser().resolve()
    if is_ready(root):
        return root
    for tool in ("debootstrap", "dpkg-deb"):
        if find_tool(tool) is None:
            raise DeviceError(f"{tool} not found: install it (apt-get install debootstrap dpkg) to build the arm64 rootfs")
    step = on_step or _no_progress
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.with_name(root.name + ".lock")):
        if is_ready(root):
            return root
        staging = root.with_name(root.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        step(f"debootstrap: downloading Debian {DEBIAN_SUITE} arm64 packages", 0, None)
        _run(debootstrap_command(staging, mirror=mirror), what="debootstrap (first stage)")
        _extract_debs(staging, on_step=step)
        _merge_usr(staging)
        step(f"pip download: aarch64 wheels {' '.join(WHEELS)}", 0, None)
        _install_wheels(staging, python=python)
        (staging / READY_MARKER).write_text(" ".join(WHEELS) + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    return root


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], *, what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DeviceError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def find_tool(name: str) -> str | None:
    """``name`` on PATH, or in /usr/sbin or /sbin (root's tools are there and a user's PATH may lack them)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin"):
        candidate = Path(folder, name)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


ROOTFS_BUILD_TOOLS = {"debootstrap": "debootstrap", "dpkg-deb": "dpkg"}  # tool -> Debian package, only while unbuilt


def require_tools(tools: dict[str, str], rootfs: Path, *, device: str) -> None:
    """One line naming every missing tool (``{tool: Debian package}``, plus the rootfs build tools while the
    rootfs is not built) and the ``apt-get install`` that brings them, for ``edgesep device setup DEVICE``."""
    needed = dict(tools) if is_ready(rootfs) else {**tools, **ROOTFS_BUILD_TOOLS}
    missing = {tool: package for tool, package in needed.items() if find_tool(tool) is None}
    if missing:
        packages = " ".join(dict.fromkeys(missing.values()))
        raise DeviceError(
            f"{', '.join(missing)} not found ({device} needs {', '.join(needed)}): install with "
            f"`apt-get install {packages}` (bash scripts/install.sh does it as root), then run "
            f"`edgesep device setup {device}` again"
        )


def _no_progress(description: str, done: int, total: int | None) -> None:
    pass


def _extract_debs(root: Path, *, on_step: BuildProgress) -> None:
    archives = sorted((root / "var" / "cache" / "apt" / "archives").glob("*.deb"))
    if not archives:
        raise DeviceError(f"debootstrap left no .deb files in {root}/var/cache/apt/archives")
    for done, deb in enumerate(archives):
        on_step(f"unpacking {deb.name.split('_')[0]}", done, len(archives))
        _run(["dpkg-deb", "-x", str(deb), str(root)], what=f"dpkg-deb -x {deb.name}")
    on_step("unpacked the arm64 packages", len(archives), len(archives))


def _merge_usr(root: Path) -> None:
    """Make ROOT/{lib,bin,sbin,lib64} symlinks into usr/ again after ``dpkg-deb -x`` replaced them."""
    for name in ("lib", "bin", "sbin", "lib64"):
        top = root / name
        if top.is_symlink() or not top.exists():
            continue
        target = root / "usr" / name
        target.mkdir(parents=True, exist_ok=True)
        _merge_tree(top, target)
        shutil.rmtree(top)
        top.symlink_to(f"usr/{name}")


def _merge_tree(source: Path, target: Path) -> None:
    """Move ``source``'s entries into ``target``; entries already in ``target`` win."""
    for entry in source.iterdir():
        dest = target / entry.name
        if entry.is_dir() and not entry.is_symlink() and dest.is_dir() and not dest.is_symlink():
            _merge_tree(entry, dest)
        elif not (dest.exists() or dest.is_symlink()):
            shutil.move(str(entry), str(dest))


def _install_wheels(root: Path, *, python: str) -> None:
    site = root / SITE_DIR
    site.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgesep-wheels-") as tmp:
        _run(wheel_download_command(Path(tmp), python=python), what="pip download (aarch64 wheels)")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != len(WHEELS):
            raise DeviceError(f"expected {len(WHEELS)} aarch64 wheels, pip gave {[w.name for w in wheels]}")
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
    for so in site.rglob("*.so*"):
        so.chmod(0o755)
