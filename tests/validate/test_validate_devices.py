"""`validate` on the x86 three: local, real SSH to a local sshd, and the real adb to edgesep's emulated phone.

Same inputs and the same runtime, so the accuracy figures must be identical and the outputs bit-equal.
The sshd and adb helpers are the device tests' own (tests/devices), loaded by path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from edgesep.devices.base import RunSpec
from edgesep.devices.local import LocalDevice
from edgesep.validate.multi import validate_on_devices

DEVICE_TESTS = Path(__file__).resolve().parents[1] / "devices"


def _helper(name: str):
    path = DEVICE_TESTS / f"{name}.py"  # part of the repository: a missing helper is an error, not a skip
    module_name = f"edgesep_validate_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ssh_device(tmp_path):
    sshd_server = _helper("sshd_server")
    if not Path(sshd_server.SSHD).exists():
        pytest.skip("openssh-server (sshd) is not installed")
    from edgesep.devices.ssh import SshDevice

    server = sshd_server.start_sshd(tmp_path / "sshd")
    yield SshDevice(host="127.0.0.1", user=server.user, port=server.port, key=server.key,
                    known_hosts=server.known_hosts, python=(sys.executable,), name="ssh-localhost")  # fmt: skip
    server.stop()


@pytest.fixture
def adb_device(tmp_path, monkeypatch):
    """The real adb client and a private adb server, connected to edgesep's emulated phone (x86 Python here)."""
    adb_real = _helper("adb_real")
    server = adb_real.start_adb_server(tmp_path / "adb-home")
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(server.port))
    phones = adb_real.PhoneFactory(server, tmp_path)
    phone = phones.start()
    from edgesep.devices.adb import AdbDevice

    yield AdbDevice(serial=phone.serial, python=(sys.executable,), name="adb-emulated")
    phones.close()
    server.kill()


def test_identical_figures_on_local_ssh_and_adb(digits_models, ssh_device, adb_device, tmp_path):
    float_path, quant_path, _ = digits_models
    result = validate_on_devices(float_path, quant_path, data="digits", samples=40, output_dir=tmp_path / "out",
                                 devices=[LocalDevice(), ssh_device, adb_device],
                                 spec=RunSpec(runs=3, warmup=1, threads=1))  # fmt: skip
    local, ssh, adb = result.reports
    assert [r.device for r in result.reports] == ["local", "ssh-localhost", "adb-emulated"]
    for other in (ssh, adb):
        assert other.comparison.baseline.top1 == local.comparison.baseline.top1
        assert other.comparison.candidate.top1 == local.comparison.candidate.top1
        assert other.comparison.agreement == local.comparison.agreement
    assert local.comparison.baseline.top1 > 0.85
    for cross in result.cross_device:
        assert cross.float_fidelity.max_abs == 0.0 and cross.quant_fidelity.max_abs == 0.0
    for name in ("local", "ssh-localhost", "adb-emulated"):
        assert (tmp_path / "out" / name / "report.html").is_file()
