"""Where edgesep keeps what it builds once and reuses: ``$EDGESEP_CACHE``, else ``$XDG_CACHE_HOME/edgesep``, else
``~/.cache/edgesep``.  Below every layer, so the model checkpoint, the arm64 rootfs and the state of the emulated
devices (``devices/<name>/``) all follow the same variable."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$EDGESEP_CACHE`` if set, else ``$XDG_CACHE_HOME/edgesep``, else ``~/.cache/edgesep``."""
    root = os.environ.get("EDGESEP_CACHE")
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesep"
