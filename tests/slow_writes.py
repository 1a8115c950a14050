"""Test helper (a fault-injection shim, not a test): ``python tests/slow_writes.py ARGS`` is ``edgesep ARGS`` with
every rename of an edgesep temp file onto its target delayed by 0.25 s, so a test can SIGKILL the process while a
written temp file waits to be published (a kill "during a write")."""

from __future__ import annotations

import os
import sys
import time

DELAY_S = 0.25
_replace = os.replace


def slow_replace(source, target, *args, **kwargs):
    name = os.path.basename(os.fspath(source))
    if name.startswith(".") and name.endswith(".tmp"):
        time.sleep(DELAY_S)
    return _replace(source, target, *args, **kwargs)


if __name__ == "__main__":
    os.replace = slow_replace
    from edgesep.cli.main import run

    sys.argv[0] = "edgesep"
    run()
