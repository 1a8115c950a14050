"""Session fixtures for the device tests: tiny .tflite models and an input batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device_models import INPUT_SHAPE, build_tflite


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-models")
    return {"float": build_tflite(folder, int8=False), "int8": build_tflite(folder, int8=True)}


@pytest.fixture(scope="session")
def tiny_inputs() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((6, *INPUT_SHAPE[1:])).astype(np.float32)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (random port) with host-key checking against its own known_hosts."""
    from sshd_server import SSHD, start_sshd

    if not Path(SSHD).exists():
        pytest.skip("openssh-server (sshd) is not installed")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture()
def ssh_device(sshd):
    import sys

    from edgesep.devices.ssh import SshDevice

    return SshDevice(
        host="127.0.0.1", user=sshd.user, port=sshd.port, key=sshd.key, known_hosts=sshd.known_hosts,
        python=(sys.executable,), name="test-ssh",
    )  # fmt: skip
