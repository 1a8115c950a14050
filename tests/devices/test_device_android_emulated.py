"""The ``android-emulated`` profile: the background emulated phone, found through its state file, whose
python3 is the arm64 Python under qemu — so the agent runs arm64 TFLite kernels behind the real adb."""

from __future__ import annotations

import json

import numpy as np
import pytest
from device_models import reference_outputs

from edgesep.devices import open_device
from edgesep.devices.base import RunSpec
from edgesep.devices.phone_emulator import background
from edgesep.errors import DeviceError


@pytest.fixture()
def android_emulated(adb_server, arm64_rootfs, tmp_path, monkeypatch):
    """``launch()`` the background phone with the state in a temp EDGESEP_CACHE; ``stop()`` at the end."""
    monkeypatch.setenv("EDGESEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    status = background.launch(rootfs=arm64_rootfs)
    yield status
    assert background.stop() is True
    assert background.status() is None


def test_profile_runs_arm64_kernels_on_the_emulated_phone(android_emulated, adb_server, tiny_models, tiny_inputs, tmp_path):
    assert android_emulated.running and android_emulated.serial == f"127.0.0.1:{android_emulated.port}"
    state = json.loads(background.state_file().read_text())
    assert state["serial"] == android_emulated.serial and state["root"].startswith(str(tmp_path / "cache"))
    adb_server.run("disconnect", android_emulated.serial)  # opening the profile connects it again
    device = open_device("android-emulated")
    assert device.serial == android_emulated.serial and device.emulated and device.python == ("python3",)
    inputs = tiny_inputs[:3]
    results = device.run(tiny_models, inputs, tmp_path / "res", spec=RunSpec(runs=3, warmup=1, threads=1))
    for result in results.values():
        assert result.emulated and result.complete
        assert result.device["machine"] == "aarch64" and "emulating aarch64" in result.device["cpu"]
        assert result.device["runtime"] == {"name": "ai_edge_litert", "version": "1.4.0"}
    float_diff = float(np.max(np.abs(results["float"].outputs - reference_outputs(tiny_models["float"], inputs))))
    x86_int8 = reference_outputs(tiny_models["int8"], inputs)
    int8_diff = float(np.max(np.abs(results["int8"].outputs - x86_int8)))
    print(f"emulated phone (arm64) vs x86: float max-abs {float_diff:.2e}, int8 max-abs {int8_diff:.2e}")
    assert float_diff <= 1e-5
    assert int8_diff <= float(np.max(np.abs(x86_int8))) / 127 + 1e-6  # at most one output quantization step
    assert background.launch(rootfs=None).pid == android_emulated.pid  # already running: reused


def test_profile_without_a_running_phone_says_how_to_start_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESEP_CACHE", str(tmp_path / "cache"))
    expected = r"'android-emulated' is not running \(not started\): start it with `edgesep device setup android-emulated`"
    with pytest.raises(DeviceError, match=expected):
        open_device("android-emulated")
    background.write_state(background.PhoneStatus(pid=2**22 + 1, port=1, serial="127.0.0.1:1", root="x",
                                                  rootfs=None, auth="none"), background.state_file())  # fmt: skip
    with pytest.raises(DeviceError, match=r"not running \(stale state in .*state.json\)"):
        open_device("android-emulated")
    assert background.stop() is False and not background.state_file().exists()


def test_device_setup_status_stop_manage_the_emulated_phone(adb_server, arm64_rootfs, tmp_path):
    """The CLI a user runs: `edgesep device setup android-emulated` (its own process: the phone outlives it)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "EDGESEP_CACHE": str(tmp_path / "cache"), "ANDROID_ADB_SERVER_PORT": str(adb_server.port),
           "EDGESEP_ARM64_ROOTFS": str(arm64_rootfs)}  # fmt: skip

    def edgesep(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgesep", *argv], capture_output=True, text=True, env=env, timeout=300)

    try:
        started = edgesep("device", "setup", "android-emulated")
        assert started.returncode == 0, started.stderr[-2000:]
        status = json.loads(edgesep("device", "status", "android-emulated", "--json").stdout)
        assert status["running"] is True and status["profile"]["serial"] == status["address"]
        assert status["address"].startswith("127.0.0.1:")
        listed = adb_server.run("devices").stdout
        assert f"{status['address']}\tdevice" in listed
        again = edgesep("device", "setup", "android-emulated")
        assert again.returncode == 0 and "already running, reused" in again.stdout
        stopped = edgesep("device", "stop", "android-emulated")
        assert stopped.returncode == 0 and f"stopped the emulated phone (pid {status['pid']})" in stopped.stdout
        assert json.loads(edgesep("device", "status", "android-emulated", "--json").stdout)["running"] is False
    finally:
        edgesep("device", "stop", "android-emulated")
