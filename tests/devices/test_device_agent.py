"""The on-device agent run as a script, as a device runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from device_models import reference_outputs

from edgesep.devices import agent
from edgesep.devices.base import AGENT_PATH
from edgesep.results import RunResults


def _run_agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(AGENT_PATH), *args], capture_output=True, text=True, timeout=120)


def test_agent_float_and_int8_match_direct_interpreter(tiny_models, tiny_inputs, tmp_path):
    np.save(tmp_path / "inputs.npy", tiny_inputs)
    done = _run_agent(
        "--models", f"{tiny_models['float']}=float", f"{tiny_models['int8']}=int8",
        "--inputs", str(tmp_path / "inputs.npy"), "--out", str(tmp_path / "out"),
        "--runs", "10", "--warmup", "2", "--threads", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for tag in ("float", "int8"):
        results = RunResults.load(tmp_path / "out" / f"{tag}.results.json")
        expected = reference_outputs(tiny_models[tag], tiny_inputs)
        assert results.complete and results.error is None
        assert results.outputs.shape == (6, 4) and results.outputs.dtype == np.float32
        assert float(np.max(np.abs(results.outputs - expected))) <= 1e-6
        assert results.latencies_ms.shape == (10,) and np.all(results.latencies_ms > 0)
        assert results.warmup == 2 and results.threads == 1 and results.samples == 6
        assert results.device["runtime"]["name"] == "ai_edge_litert"
        assert results.device["cores"] >= 1 and results.device["numpy"] == np.__version__
        assert results.emulated is False
        assert results.model_bytes == tiny_models[tag].stat().st_size
    float_out = RunResults.load(tmp_path / "out" / "float.results.json").outputs
    int8_out = RunResults.load(tmp_path / "out" / "int8.results.json").outputs
    # the int8 model follows the float one closely on these inputs
    assert float(np.mean(float_out.argmax(1) == int8_out.argmax(1))) >= 5 / 6
    assert float(np.max(np.abs(float_out - int8_out))) < 0.1 * float(np.max(np.abs(float_out)))


def test_agent_random_inputs_are_seeded(tiny_models, tmp_path):
    outputs = []
    for name in ("a", "b"):
        done = _run_agent("--models", f"{tiny_models['float']}=f", "--out", str(tmp_path / name), "--runs", "3")
        assert done.returncode == 0, done.stderr
        results = RunResults.load(tmp_path / name / "f.results.json")
        assert results.samples == 1 and len(results.latencies_ms) == 3
        assert results.extra["inputs"] == "random"
        outputs.append(results.outputs)
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_agent_timeout_keeps_partial_results(tiny_models, tmp_path):
    done = _run_agent(
        "--models", f"{tiny_models['float']}=f", f"{tiny_models['int8']}=q",
        "--out", str(tmp_path), "--runs", "100000000", "--warmup", "0", "--timeout", "1.5",
    )  # fmt: skip
    assert done.returncode == agent.EXIT_TIMEOUT
    assert "timeout after 1.5 s" in done.stderr
    partial = RunResults.load(tmp_path / "f.results.json")
    assert not partial.complete and "timeout" in partial.error
    assert 0 < len(partial.latencies_ms) < 100000000
    assert partial.outputs.shape == (1, 4)  # the one random sample's output was kept
    assert not (tmp_path / "q.results.json").exists()  # the run stopped at the deadline
    assert not list(tmp_path.glob(".*.tmp"))


def test_agent_reports_shape_mismatch_in_results(tiny_models, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 8, 8), np.float32))  # NCHW for an NHWC model
    done = _run_agent("--models", f"{tiny_models['float']}=f", "--inputs", str(tmp_path / "bad.npy"), "--out", str(tmp_path))
    assert done.returncode == agent.EXIT_BAD_INPUT
    body = json.loads((tmp_path / "f.results.json").read_text())
    assert body["complete"] is False and "does not fit model input shape [1, 8, 8, 3]" in body["error"]


def test_agent_check_runtime_and_bad_args(tmp_path):
    done = _run_agent("--check-runtime")
    assert done.returncode == 0
    facts = json.loads(done.stdout)
    assert facts["runtime"]["name"] == "ai_edge_litert" and facts["emulated"] is False
    missing = _run_agent("--models", str(tmp_path / "nope.tflite"), "--out", str(tmp_path))
    assert missing.returncode == agent.EXIT_BAD_INPUT and "model not found" in missing.stderr


def test_quantize_dequantize_round_trip():
    values = np.linspace(-1.0, 1.0, 21, dtype=np.float32)
    q = agent.quantize(values, np.dtype(np.int8), 1 / 127, 0)
    assert q.dtype == np.int8 and q.min() == -127 and q.max() == 127
    assert float(np.max(np.abs(agent.dequantize(q, 1 / 127, 0) - values))) <= 0.5 / 127 + 1e-7
    u = agent.quantize(np.array([-10.0, 0.0, 10.0]), np.dtype(np.uint8), 0.1, 128)
    np.testing.assert_array_equal(u, [28, 128, 228])


def test_cpu_model_parsing(tmp_path):
    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert agent.cpu_model(str(arm)) == "Raspberry Pi 4 Model B Rev 1.4"
    bare = tmp_path / "bare"
    bare.write_text("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n")
    assert agent.cpu_model(str(bare)) == "ARM CPU part 0xd0b (implementer 0x41)"


@pytest.mark.parametrize("text,expected", [("m.tflite=fp", ("m.tflite", "fp")), ("/a/b/m.tflite", ("/a/b/m.tflite", "m"))])
def test_parse_model_arg(text, expected):
    assert agent.parse_model_arg(text) == expected


def test_agent_sigterm_writes_partial_results(tiny_models, tmp_path):
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, str(AGENT_PATH), "--models", f"{tiny_models['float']}=f", "--out", str(tmp_path),
         "--runs", "100000000", "--warmup", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    results_file = tmp_path / "f.results.json"
    for _ in range(600):  # wait until the agent has written its first chunk
        if results_file.exists() and json.loads(results_file.read_text())["latencies_ms"]:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == agent.EXIT_TERMINATED, stderr
    partial = RunResults.load(results_file)
    assert not partial.complete and partial.error.startswith("terminated by signal 15 after")
    assert len(partial.latencies_ms) > 0


def test_run_process_kills_the_group_at_the_timeout():
    from edgesep.devices.base import run_process

    outcome = run_process(["sh", "-c", "sleep 30 & sleep 30; echo never"], timeout_s=0.5)
    assert outcome.timed_out and outcome.returncode is None and "never" not in outcome.stdout


def test_agent_npz_inputs_equal_npy_inputs(tiny_models, tiny_inputs, tmp_path):
    np.savez(tmp_path / "inputs.npz", images=tiny_inputs)  # one array: matched to the one model input
    done = _run_agent("--models", f"{tiny_models['int8']}=q", "--inputs", str(tmp_path / "inputs.npz"),
                      "--out", str(tmp_path / "out"), "--runs", "0", "--warmup", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = RunResults.load(tmp_path / "out" / "q.results.json")
    np.testing.assert_array_equal(results.outputs, reference_outputs(tiny_models["int8"], tiny_inputs))
    assert len(results.latencies_ms) == 6  # at least one timed run per sample
