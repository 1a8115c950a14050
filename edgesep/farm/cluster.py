"""Connecting to Ray: an existing cluster (``--address`` / ``RAY_ADDRESS``) or an embedded one in this process.

Embedded, Ray starts on this machine with all its cores, and this node offers one ``device:<name>`` resource per
device of the sweep (the devices are attached here).  On a cluster, each node offers the resources of the devices
attached to it (``ray start ... --resources='{"device:rpi4": 1}'``) and nothing is registered from here.
Ray's own logs stay in its temp dir; its driver-side messages are kept to errors.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgesep.errors import InputError
from edgesep.farm.config import device_resource

EMBEDDED_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""The embedded object store: model files pass through it (a sweep holds a few MB per model and recipe)."""


@dataclass(frozen=True)
class Connection:
    address: str | None
    """None: embedded (started here, stopped when the sweep ends)."""
    nodes: int
    messages: list[str] = field(default_factory=list)
    """What Ray's driver printed while connected (its "(raylet) node ... marked dead" lines), kept off stdout."""


def ray_module():
    """``import ray`` with a clear message when the ``farm`` extra is not installed."""
    try:
        import ray
    except ImportError:
        raise InputError("edgesep farm needs Ray: pip install 'edgesep[farm]'") from None
    return ray


def cluster_address(address: str | None) -> str | None:
    """``--address`` or else ``RAY_ADDRESS``; None means embedded."""
    chosen = address or os.environ.get("RAY_ADDRESS") or None
    return chosen.strip() if chosen else None


@contextlib.contextmanager
def connect(
    address: str | None, *, devices: Sequence[str], num_cpus: int | None = None, messages: Path | None = None
) -> Iterator[Connection]:
    """Connect (or start embedded Ray with the devices' resources), yield, disconnect.

    Ray's driver prints cluster events (a node marked dead, ...) on stdout from a thread of its own, even with
    ``log_to_driver=False``; while connected, stdout is redirected and those lines go to ``messages`` (a log file)
    so that the CLI's output (``--json``) stays clean.
    """
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield from _connected(address, devices=devices, num_cpus=num_cpus)
    finally:
        text = buffer.getvalue()
        if text and messages is not None:
            with open(messages, "a", encoding="utf-8") as log:
                log.write(text)


def _connected(address: str | None, *, devices: Sequence[str], num_cpus: int | None) -> Iterator[Connection]:
    ray = ray_module()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    address = cluster_address(address)
    try:
        if address is None:
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                resources={device_resource(device): 1 for device in devices},
                object_store_memory=EMBEDDED_OBJECT_STORE_BYTES,
                **quiet,
            )
        else:
            ray.init(address=address, **quiet)
    except ConnectionError as error:
        raise InputError(f"cannot connect to the Ray cluster at {address}: {error}") from None
    try:
        yield Connection(address=address, nodes=sum(1 for node in ray.nodes() if node.get("Alive")))
    finally:
        ray.shutdown()


def offered_devices(devices: Sequence[str]) -> set[str]:
    """The devices some live node of the cluster offers (its ``device:<name>`` resource)."""
    resources = ray_module().cluster_resources()
    return {device for device in devices if resources.get(device_resource(device), 0) > 0}
