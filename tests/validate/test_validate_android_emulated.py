"""`edgesep validate --device android-emulated --device pi-emulated-local` on digits: the emulated phone
(real adb client and server, edgesep's adbd emulator, arm64 Python under qemu) and the emulated Pi run the
same arm64 rootfs, so their int8 outputs must be equal bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import numpy as np
import pytest

from edgesep.cli.main import main


@pytest.fixture()
def android_emulated(tmp_path, monkeypatch):
    from edgesep.devices.emulated import default_rootfs_dir, is_ready, qemu_available
    from edgesep.devices.phone_emulator import background

    adb = shutil.which("adb")
    if adb is None:
        if os.environ.get("CI"):
            pytest.fail("the real adb client is not installed (apt-get install adb); CI=1 requires this test")
        pytest.skip("the real adb client is not installed (apt-get install adb)")
    if not (qemu_available() and is_ready(default_rootfs_dir())):
        pytest.skip("the emulated arm64 rootfs is not built (tests/devices build it first)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))  # a private adb server
    monkeypatch.setenv("EDGESEP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "adb-home").mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "adb-home"), "TMPDIR": str(tmp_path / "adb-home")}  # keys, log
    subprocess.run([adb, "start-server"], env=env, capture_output=True, check=True, timeout=30)
    status = background.launch(rootfs=default_rootfs_dir())
    yield status
    background.stop()
    subprocess.run([adb, "kill-server"], env=env, capture_output=True, timeout=30)


def test_emulated_phone_and_emulated_pi_give_identical_int8_outputs(android_emulated, digits_models, tmp_path, capsys):
    float_path, quant_path, _ = digits_models
    out = tmp_path / "out"
    code = main(["-q", "validate", "--float", str(float_path), "--quant", str(quant_path), "--data", "digits",
                 "--samples", "24", "--runs", "24", "--warmup", "1", "--threads", "1", "--json",
                 "--device", "android-emulated", "--device", "pi-emulated-local", "--output-dir", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    phone = np.load(out / "android-emulated" / "quant.outputs.npz")
    pi = np.load(out / "pi-emulated-local" / "quant.outputs.npz")
    assert phone.files == pi.files
    for name in phone.files:
        assert phone[name].dtype == pi[name].dtype and phone[name].shape[0] == 24
        assert np.array_equal(phone[name], pi[name])  # bit for bit
    (cross,) = payload["cross_device"]
    assert (cross["reference"], cross["device"]) == ("android-emulated", "pi-emulated-local")
    assert cross["quant"]["max_abs"] == 0.0 and cross["quant"]["top1_agreement"] == 1.0
    assert cross["float"]["max_abs"] == 0.0
    for device in ("android-emulated", "pi-emulated-local"):
        facts = json.loads((out / device / "quant.results.json").read_text())
        assert facts["emulated"] is True and facts["device"]["machine"] == "aarch64"
    assert payload["devices"][0]["candidate"]["top1"] == payload["devices"][1]["candidate"]["top1"] > 0.8
