"""The adb device through a TEST DOUBLE of the adb command line (tests/devices/adb_double.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from device_models import agent_processes, reference_outputs

from edgesep.devices.adb import AdbDevice, parse_benchmark_output
from edgesep.devices.base import DeviceRunError, RunSpec
from edgesep.errors import DeviceError

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


def _remote_dirs(root):
    return sorted((root / "data" / "local" / "tmp").glob("edgesep-*"))


def test_parse_benchmark_model_output():
    timings = parse_benchmark_output(REAL_OUTPUT)
    assert (timings.init_us, timings.first_us, timings.warmup_avg_us, timings.avg_us) == (33418, 8493, 6395.51, 6205.85)
    assert (timings.count, timings.min_us, timings.max_us, timings.std_us) == (161, 6109, 6934, 97)
    with pytest.raises(DeviceError, match="no 'Inference timings in us' line"):
        parse_benchmark_output("ERROR: Could not open 'x.tflite'.\n")


def test_agent_route_over_adb(adb_double, tiny_models, tiny_inputs, tmp_path):
    device = AdbDevice(serial="R58M123ABC", python=(sys.executable,))
    results = device.run(tiny_models, tiny_inputs, tmp_path / "res", spec=RunSpec(runs=6, warmup=1, threads=1))
    for tag in ("float", "int8"):
        assert results[tag].complete and len(results[tag].latencies_ms) == 6
        expected = reference_outputs(tiny_models[tag], tiny_inputs)
        assert float(np.max(np.abs(results[tag].outputs - expected))) <= 1e-6
    assert _remote_dirs(adb_double) == []


def test_benchmark_model_route_gives_latency_only(adb_double, tiny_models, tmp_path):
    device = AdbDevice(serial="R58M123ABC", benchmark_model="/data/local/tmp/benchmark_model")
    results = device.run(tiny_models, None, tmp_path / "res", spec=RunSpec(runs=20, warmup=2, threads=1))
    for tag, result in results.items():
        assert result.source == "benchmark_model" and result.outputs is None
        stats = result.latency_stats()
        assert stats.count == 20 and 0 <= stats.min <= stats.mean <= stats.max  # a tiny model can read 0 us
        assert result.device["model"] == "Pixel Double" and result.device["machine"] == "arm64-v8a"
        assert (tmp_path / "res" / f"{tag}.results.json").is_file()
    assert _remote_dirs(adb_double) == []


@pytest.mark.parametrize(
    "state,serial,message",
    [
        ("unauthorized", "R58M123ABC", "device unauthorized.*accept the USB debugging prompt"),
        ("offline", "R58M123ABC", "device offline.*reconnect"),
        ("device", "OTHER123", "device 'OTHER123' not found.*adb devices"),
    ],
)
def test_unavailable_device_errors(adb_double, tiny_models, tmp_path, monkeypatch, state, serial, message):
    monkeypatch.setenv("ADB_DOUBLE_STATE", state)
    device = AdbDevice(serial=serial, python=(sys.executable,))
    with pytest.raises(DeviceError, match=message):
        device.run({"f": tiny_models["float"]}, None, tmp_path)


def test_disconnect_mid_run_keeps_partial_results(adb_double, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("ADB_DOUBLE_DISCONNECT_S", "4")
    device = AdbDevice(serial="R58M123ABC", python=(sys.executable,))
    with pytest.raises(DeviceRunError, match="lost the device during the run.*partial results kept") as caught:
        device.run({"f": tiny_models["float"]}, None, tmp_path, spec=RunSpec(runs=10**8, warmup=0))
    partial = caught.value.results["f"]
    assert not partial.complete and len(partial.latencies_ms) > 0
    assert _remote_dirs(adb_double) == []
    assert _agents_running(str(adb_double)) == []  # the cleanup stopped the orphaned agent


def _agents_running(marker: str) -> list[int]:
    import time

    for _ in range(50):  # the TERMed agent may need a moment to write its last chunk and exit
        found = agent_processes(marker)
        if not found:
            return []
        time.sleep(0.2)
    return found


def test_timeout_over_adb(adb_double, tiny_models, tmp_path):
    device = AdbDevice(serial="R58M123ABC", python=(sys.executable,))
    with pytest.raises(DeviceRunError, match="timeout after 1.5 s"):
        device.run({"f": tiny_models["float"]}, None, tmp_path, spec=RunSpec(runs=10**8, warmup=0, timeout_s=1.5))
    assert (tmp_path / "f.results.json").is_file()
    assert _remote_dirs(adb_double) == []


def test_missing_python_on_phone(adb_double, tiny_models, tmp_path):
    device = AdbDevice(serial="R58M123ABC", python=("python-not-on-phone",))
    with pytest.raises(DeviceRunError, match="not found on the device; install Python there"):
        device.run({"f": tiny_models["float"]}, None, tmp_path)


def test_empty_serial_means_the_only_attached_device(adb_double, monkeypatch):
    assert AdbDevice(serial="").only_serial() == "R58M123ABC"
    monkeypatch.setenv("ADB_DOUBLE_STATE", "unauthorized")
    assert AdbDevice(serial="").only_serial() == "R58M123ABC"  # listed; get-state then explains
