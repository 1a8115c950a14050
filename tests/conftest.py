"""The whole suite keeps out of the user's edgesep cache (~/.cache/edgesep): it never writes there.

Unless the environment names them (CI does: $EDGESEP_CACHE and $EDGESEP_ARM64_ROOTFS in its own work folder),
the cache is the test-owned ``.pytest_cache/edgesep`` of the repository, and the emulated Pi's arm64 rootfs is
the user's one when it is built already (reused read-only: nothing rebuilds or changes a ready rootfs), else
``.pytest_cache/edgesep/arm64-rootfs`` (built by the first device test that needs it, 24 s here).
Set before any test runs, so the CLI subprocesses of the tests inherit both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

try:  # torch's triton segfaults when imported after TensorFlow: import it first, whichever tests a run selects
    import torch._dynamo  # noqa: F401
except ImportError:  # pragma: no cover - the test extra installs torch
    pass


def pytest_configure(config) -> None:
    from edgesep.devices.emulated import default_rootfs_dir, is_ready

    cache_given = bool(os.environ.get("EDGESEP_CACHE"))
    users_rootfs = default_rootfs_dir()
    if not cache_given:
        os.environ["EDGESEP_CACHE"] = str(Path(config.rootpath) / ".pytest_cache" / "edgesep")
    if not os.environ.get("EDGESEP_ARM64_ROOTFS"):
        reuse = not cache_given and is_ready(users_rootfs)
        os.environ["EDGESEP_ARM64_ROOTFS"] = str(users_rootfs if reuse else Path(os.environ["EDGESEP_CACHE"]) / "arm64-rootfs")


@dataclass(frozen=True)
class DefaultRun:
    """One ``edgesep run -o OUT`` of the default pipeline, as a newcomer types it (the console script)."""

    done: subprocess.CompletedProcess[str]
    out: Path
    console_script: bool  # False: the console script is not installed next to this Python; ran ``python -m edgesep``


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> DefaultRun:
    """The session's one run of the default pipeline in a new process (a full ``edgesep run``: ~15 s), shared by the
    test of the console script's output (tests/cli) and the emulated-Pi test that validates its two models
    (tests/devices/test_device_setup.py). ``$EDGESEP_CACHE`` is the suite's (set in pytest_configure)."""
    script = Path(sys.executable).with_name("edgesep")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "edgesep"]
    out = tmp_path_factory.mktemp("default-run") / "out"
    done = subprocess.run([*command, "run", "-o", str(out)], capture_output=True, text=True, timeout=600, check=False)
    return DefaultRun(done=done, out=out, console_script=script.is_file())
