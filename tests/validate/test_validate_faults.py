"""A device run that fails mid-way: the error propagates and a report of the partial measurements is kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.devices.base import DeviceRunError, RunSpec
from edgesep.fileio import sidecar_path
from edgesep.validate import validate


def _model(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\0" * 1000)
    payload = {"format": "tflite", "inputs": [{"name": "input", "shape": [1, 16, 16, 1], "dtype": "float32", "layout": "NHWC"}]}
    sidecar_path(path).write_text(json.dumps(payload))
    return path


class InterruptedDevice:
    """Float completes; the quantized run stops after 10 of 40 samples (like a disconnect)."""

    name = "flaky"
    emulated = False

    def __init__(self, fake_run, labels):
        self.fake_run, self.labels = fake_run, labels

    def run(self, models, inputs, results_dir, *, spec, force=False):
        assert inputs.shape == (40, 16, 16, 1)
        logits = np.eye(10, dtype=np.float32)[self.labels] * 3
        float_run = self.fake_run("float", "f.tflite", 1000, np.full(40, 2.0), logits)
        quant_run = self.fake_run("quant", "q.tflite", 1000, np.full(10, 1.0), logits[:10], complete=False,
                                  error="connection lost")  # fmt: skip
        raise DeviceRunError("flaky: agent failed: connection lost", results={"float": float_run, "quant": quant_run})


def test_partial_results_make_an_incomplete_report(fake_run, tmp_path):
    from edgesep.data.digits import load_digits_split

    labels = load_digits_split().y_test[:40]
    out = tmp_path / "out"
    device = InterruptedDevice(fake_run, labels)
    with pytest.raises(DeviceRunError, match="connection lost; partial report written to") as caught:
        validate(_model(tmp_path, "f.tflite"), _model(tmp_path, "q.tflite"), data="digits", samples=40,
                 device=device, spec=RunSpec(runs=1), output_dir=out)  # fmt: skip
    assert caught.value.exit_code == 2
    markdown = (out / "report.md").read_text()
    assert "INCOMPLETE run for quant: connection lost" in markdown
    assert "| quant | 100.00% |" in markdown  # the 10 measured samples are all right
    assert (out / "latency_hist.png").is_file()


def test_no_partial_report_without_output_dir(fake_run, tmp_path):
    from edgesep.data.digits import load_digits_split

    device = InterruptedDevice(fake_run, load_digits_split().y_test[:40])
    with pytest.raises(DeviceRunError) as caught:
        validate(_model(tmp_path, "f.tflite"), _model(tmp_path, "q.tflite"), data="digits", samples=40, device=device)
    assert "partial report" not in str(caught.value)
