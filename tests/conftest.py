"""The whole suite keeps out of the user's edgesep cache (~/.cache/edgesep): it never writes there.

Unless the environment names them (CI does: $EDGESEP_CACHE and $EDGESEP_ARM64_ROOTFS in its own work folder),
the cache is the test-owned ``.pytest_cache/edgesep`` of the repository, and the emulated Pi's arm64 rootfs is
the user's one when it is built already (reused read-only: nothing rebuilds or changes a ready rootfs), else
``.pytest_cache/edgesep/arm64-rootfs`` (built by the first device test that needs it, 24 s here).
Set before any test runs, so the CLI subprocesses of the tests inherit both.
"""

from __future__ import annotations

import os
from pathlib import Path

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
