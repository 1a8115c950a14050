"""The adb device through the REAL adb client and server (/usr/bin/adb, a private server port) against edgesep's
emulated phone (edgesep.devices.phone_emulator; the old adb command-line double is gone).

Every edgesep adb route — info, push/pull, the agent, benchmark_model — goes through ``adb connect
127.0.0.1:PORT`` to :mod:`edgesep.devices.phone_emulator`; the device states (offline, unauthorized,
gone, a slow link) are the real client's own answers.  The agent runs with this host's Python here
(fast); test_device_android_emulated.py runs it with the arm64 Python under qemu.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from device_models import agent_processes, reference_outputs

from edgesep.devices import adb as adb_module
from edgesep.devices.adb import AdbDevice, parse_benchmark_output
from edgesep.devices.base import DeviceRunError, RunSpec
from edgesep.devices.phone_emulator import AuthMode
from edgesep.errors import DeviceError

QUICK = RunSpec(runs=6, warmup=1, threads=1)
ODD_NAME = "a b;$(touch pwned)'q\"`x`.bin"
REAL_OUTPUT = """\
INFO: Log parameter values verbosely: [0]
INFO: Graph: [/data/local/tmp/mobilenet_v1.tflite]
INFO: The input model file size (MB): 4.27635
INFO: Initialized session in 33.418ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=78 first=8493 curr=6203 min=6148 max=8493 avg=6395.51 std=382
INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=161 first=6241 curr=6180 min=6109 max=6934 avg=6205.85 std=97
INFO: Inference timings in us: Init: 33418, First inference: 8493, Warmup (avg): 6395.51, Inference (avg): 6205.85
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your own discretion.
"""


def _remote_dirs(phone) -> list[Path]:
    return sorted((phone.root / "data" / "local" / "tmp").glob("edgesep-*"))


def test_parse_benchmark_model_output():
    timings = parse_benchmark_output(REAL_OUTPUT)
    assert (timings.init_us, timings.first_us, timings.warmup_avg_us, timings.avg_us) == (33418, 8493, 6395.51, 6205.85)
    assert (timings.count, timings.min_us, timings.max_us, timings.std_us) == (161, 6109, 6934, 97)
    with pytest.raises(DeviceError, match="no 'Inference timings in us' line"):
        parse_benchmark_output("ERROR: Could not open 'x.tflite'.\n")


def test_the_real_client_sees_an_arm64_phone(phones, adb_server):
    phone = phones.start()
    listing = adb_server.run("devices", "-l").stdout
    assert f"{phone.serial}" in listing and "device product:edgesep_phone" in listing
    shell = adb_server.run("-s", phone.serial, "shell", "getprop ro.product.cpu.abi; getprop ro.build.version.sdk; "
                           "echo to-stderr >&2; exit 3")  # fmt: skip
    assert (shell.returncode, shell.stdout, shell.stderr) == (3, "arm64-v8a\n34\n", "to-stderr\n")  # shell v2
    blob = bytes(range(256)) * 1024 + b"\r\n\x00end"
    (phone.root / "data" / "local" / "tmp" / "blob").write_bytes(blob)
    exec_out = adb_server.run_bytes("-s", phone.serial, "exec-out", "cat /data/local/tmp/blob")
    assert exec_out == blob  # exec: is binary-clean (no pty, no newline translation)
    info = AdbDevice(serial=phone.serial).device_facts()
    assert (info["model"], info["machine"], info["android"]) == ("edgesep emulated phone", "arm64-v8a", "14")
    assert info["cores"] == os.cpu_count()


def test_raw_shell_without_shell_v2_carries_no_exit_code(phones, adb_server):
    phone = phones.start(features=("cmd",))
    shell = adb_server.run("-s", phone.serial, "shell", "echo out; echo err >&2; exit 3")
    assert (shell.returncode, shell.stdout, shell.stderr) == (0, "out\nerr\n", "")  # merged, exit code lost


def test_push_and_pull_odd_names_and_a_large_file(phones, adb_server, tmp_path):
    phone = phones.start()
    local = tmp_path / "local dir"
    local.mkdir()
    payload = np.random.default_rng(3).bytes(300_000)  # several 64 KiB sync DATA chunks and WRTE messages
    (local / ODD_NAME).write_bytes(payload)
    remote = "/data/local/tmp/with space/"
    assert adb_server.run("-s", phone.serial, "shell", "mkdir -p '/data/local/tmp/with space'").returncode == 0
    pushed = adb_server.run("-s", phone.serial, "push", str(local / ODD_NAME), remote)
    assert pushed.returncode == 0, pushed.stderr
    on_phone = phone.root / "data" / "local" / "tmp" / "with space" / ODD_NAME
    assert on_phone.read_bytes() == payload
    listed = adb_server.run("-s", phone.serial, "shell", f"ls {remote!r}")  # one quoted command string
    assert listed.stdout.splitlines() == [ODD_NAME]
    back = tmp_path / "back"
    back.mkdir()
    pulled = adb_server.run("-s", phone.serial, "pull", "/data/local/tmp/with space", str(back))
    assert pulled.returncode == 0, pulled.stderr
    assert (back / "with space" / ODD_NAME).read_bytes() == payload
    assert not list(tmp_path.rglob("pwned")) and not list(phone.root.rglob("pwned"))
    missing = adb_server.run("-s", phone.serial, "pull", "/data/local/tmp/nothing", str(back))
    assert missing.returncode == 1 and "does not exist" in missing.stdout + missing.stderr  # adb 29 prints it on stdout


def test_agent_route_through_the_real_adb(phones, tiny_models, tiny_inputs, tmp_path):
    phone = phones.start()
    spaced = tmp_path / "models with spaces"
    spaced.mkdir()
    models = {tag: Path(shutil.copy(path, spaced / f"tiny {tag} $x;.tflite")) for tag, path in tiny_models.items()}
    device = AdbDevice(serial=phone.serial, python=(sys.executable,))
    results = device.run(models, tiny_inputs, tmp_path / "res", spec=QUICK)
    for tag in ("float", "int8"):
        assert results[tag].complete and len(results[tag].latencies_ms) == 6
        assert results[tag].model_name == f"tiny {tag} $x;.tflite"
        expected = reference_outputs(tiny_models[tag], tiny_inputs)
        assert float(np.max(np.abs(results[tag].outputs - expected))) <= 1e-6
    assert _remote_dirs(phone) == []


def test_benchmark_model_route_through_the_real_adb(phones, adb_server, tiny_models, tmp_path):
    phone = phones.start()
    double = Path(__file__).parent / "benchmark_model_double.py"  # a double of the benchmark binary only
    script = tmp_path / "benchmark_model"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {double} "$@"\n')
    assert adb_server.run("-s", phone.serial, "push", str(script), "/data/local/tmp/").returncode == 0
    assert adb_server.run("-s", phone.serial, "shell", "chmod +x /data/local/tmp/benchmark_model").returncode == 0
    device = AdbDevice(serial=phone.serial, benchmark_model="/data/local/tmp/benchmark_model")
    results = device.run(tiny_models, None, tmp_path / "res", spec=RunSpec(runs=20, warmup=2, threads=1))
    for tag, result in results.items():
        assert result.source == "benchmark_model" and result.outputs is None
        assert result.latency_stats().count == 20
        assert result.device["model"] == "edgesep emulated phone" and result.device["machine"] == "arm64-v8a"
        assert (tmp_path / "res" / f"{tag}.results.json").is_file()
    assert _remote_dirs(phone) == []


@pytest.mark.parametrize(
    ("auth", "message"),
    [(AuthMode.REJECT, r"device unauthorized\..*accept the USB debugging prompt"),
     (AuthMode.SILENT, r"device offline.*reconnect")],
    ids=["unauthorized", "offline"],
)  # fmt: skip
def test_unavailable_phone_states(phones, adb_server, tiny_models, tmp_path, auth, message):
    phone = phones.start(auth=auth)
    state = "unauthorized" if auth is AuthMode.REJECT else "offline"
    assert f"{phone.serial}\t{state}" in adb_server.run("devices").stdout
    device = AdbDevice(serial=phone.serial, python=(sys.executable,))
    with pytest.raises(DeviceError, match=message):
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res")
    assert _remote_dirs(phone) == [] and not list((tmp_path / "res").glob("*"))


def test_unknown_serial(phones, tiny_models, tmp_path):
    phones.start()
    with pytest.raises(DeviceError, match=r"device '127\.0\.0\.1:1' not found.*adb devices"):
        AdbDevice(serial="127.0.0.1:1", python=(sys.executable,)).run({"f": tiny_models["float"]}, None, tmp_path)


def test_accepted_key_is_trusted_on_the_next_connection(phones, adb_server):
    phone = phones.start(auth=AuthMode.ACCEPT)  # adb connect: "failed to authenticate" (a new key) ...
    assert adb_server.run("-s", phone.serial, "wait-for-device", timeout=10).returncode == 0  # ... then allowed
    keys = (phone.root / "data" / "misc" / "adb" / "adb_keys").read_text().splitlines()
    assert len(keys) == 1  # the user "tapped Allow" on the host's RSAPUBLICKEY
    assert adb_server.run("-s", phone.serial, "get-state").stdout.strip() == "device"
    adb_server.run("disconnect", phone.serial)
    again = adb_server.run("connect", phone.serial)
    assert again.stdout.strip() == f"connected to {phone.serial}"  # the SIGNATURE verified against adb_keys
    assert adb_server.run("-s", phone.serial, "shell", "echo ok").stdout == "ok\n"
    assert (phone.root / "data" / "misc" / "adb" / "adb_keys").read_text().splitlines() == keys


def test_link_drop_mid_run_keeps_partial_results(phones, tiny_models, tmp_path):
    phone = phones.start()
    device = AdbDevice(serial=phone.serial, python=(sys.executable,))
    threading.Timer(4.0, phone.unplug).start()  # the cable glitches; adb reconnects the TCP device
    with pytest.raises(DeviceRunError, match="lost the device during the run.*partial results kept for") as caught:
        device.run({"f": tiny_models["float"]}, None, tmp_path, spec=RunSpec(runs=10**8, warmup=0))
    partial = caught.value.results["f"]
    assert not partial.complete and len(partial.latencies_ms) > 0
    assert _remote_dirs(phone) == []
    assert agent_processes(str(phone.root)) == []


def test_phone_gone_mid_run_says_where_the_results_are(phones, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setattr(adb_module, "RECONNECT_WAIT_S", 2.0)
    phone = phones.start()
    device = AdbDevice(serial=phone.serial, python=(sys.executable,))
    threading.Timer(4.0, phone.stop).start()  # powered off
    with pytest.raises(DeviceRunError, match=r"lost the device during the run.*partial results kept for no model "
                       r"\(the device did not come back; what it measured stays in /data/local/tmp/edgesep-"):  # fmt: skip
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res", spec=RunSpec(runs=10**8, warmup=0))
    (left,) = _remote_dirs(phone)
    assert (left / "out" / "f.results.json").is_file()  # on the phone, as the message says
    assert not list((tmp_path / "res").glob("*.json"))


def test_slow_link_gives_the_same_numbers(phones, tiny_models, tiny_inputs, tmp_path):
    phone = phones.start(delay_s=0.003)  # 3 ms per message the phone sends
    device = AdbDevice(serial=phone.serial, python=(sys.executable,))
    results = device.run({"int8": tiny_models["int8"]}, tiny_inputs, tmp_path / "res", spec=QUICK)
    expected = reference_outputs(tiny_models["int8"], tiny_inputs)
    assert results["int8"].complete and float(np.max(np.abs(results["int8"].outputs - expected))) <= 1e-6
    assert _remote_dirs(phone) == []


def test_timeout_over_adb(phones, tiny_models, tmp_path):
    phone = phones.start()
    device = AdbDevice(serial=phone.serial, python=(sys.executable,))
    with pytest.raises(DeviceRunError, match="timeout after 1.5 s"):
        device.run({"f": tiny_models["float"]}, None, tmp_path, spec=RunSpec(runs=10**8, warmup=0, timeout_s=1.5))
    result = json.loads((tmp_path / "f.results.json").read_text())
    assert result["complete"] is False and len(result["latencies_ms"]) > 0
    assert _remote_dirs(phone) == []


def test_missing_python_on_phone(phones, tiny_models, tmp_path):
    phone = phones.start()  # no arm64 rootfs given: the phone has no python3
    device = AdbDevice(serial=phone.serial, python=("python3",))
    with pytest.raises(DeviceRunError, match="'python3' not found on the device; install Python there"):
        device.run({"f": tiny_models["float"]}, None, tmp_path)
    assert _remote_dirs(phone) == []


def test_empty_serial_means_the_only_attached_device(phones):
    phone = phones.start(auth=AuthMode.REJECT)
    assert AdbDevice(serial="").only_serial() == phone.serial  # listed as unauthorized; get-state then explains
    other = phones.start("second")
    with pytest.raises(DeviceError, match=r"expected one attached device, found 127\.0\.0\.1:\d+ \w+, 127"):
        AdbDevice(serial="").only_serial()
    assert other.serial != phone.serial


def test_failing_cleanup_never_hides_the_run_error(phones, tiny_models, tmp_path, monkeypatch):
    """The run fails (no python3 on the phone) and then its pull and cleanup fail too (adb gone): the run's error
    is reported, not theirs (adb's cleanup in a bare ``finally`` used to replace it)."""
    phone = phones.start()
    real_run_process = adb_module.run_process

    def adb_gone_at_cleanup(argv, **options):
        if "rm -rf" in argv[-1] or "pull" in argv:
            raise DeviceError("command not found: adb")
        return real_run_process(argv, **options)

    monkeypatch.setattr(adb_module, "run_process", adb_gone_at_cleanup)
    device = AdbDevice(serial=phone.serial, python=("python3",))
    with pytest.raises(DeviceRunError, match="'python3' not found on the device"):
        device.run({"f": tiny_models["float"]}, None, tmp_path)
    assert len(_remote_dirs(phone)) == 1  # the cleanup did fail: its folder is still there
