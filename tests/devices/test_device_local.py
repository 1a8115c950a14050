"""The local device: the agent in a subprocess, results copied into the results folder."""

from __future__ import annotations

import numpy as np
import pytest
from device_models import reference_outputs

from edgesep.devices import open_device
from edgesep.devices.base import DeviceRunError, RunSpec
from edgesep.errors import InputError


def test_local_device_runs_both_models(tiny_models, tiny_inputs, tmp_path):
    device = open_device("local")
    results = device.run(tiny_models, tiny_inputs, tmp_path / "res", spec=RunSpec(runs=8, warmup=1, threads=1))
    assert set(results) == {"float", "int8"}
    for tag, result in results.items():
        assert result.complete and len(result.latencies_ms) == 8
        np.testing.assert_allclose(result.outputs, reference_outputs(tiny_models[tag], tiny_inputs), atol=1e-6)
        assert (tmp_path / "res" / f"{tag}.results.json").is_file()
        assert (tmp_path / "res" / f"{tag}.outputs.npz").is_file()
    stats = results["float"].latency_stats()
    assert stats.count == 8 and stats.min <= stats.p50 <= stats.p99 <= stats.max


def test_local_device_refuses_overwrite_without_force(tiny_models, tmp_path):
    device = open_device("local")
    spec = RunSpec(runs=2, warmup=0)
    device.run({"f": tiny_models["float"]}, None, tmp_path, spec=spec)
    with pytest.raises(InputError, match="results exist"):
        device.run({"f": tiny_models["float"]}, None, tmp_path, spec=spec)
    again = device.run({"f": tiny_models["float"]}, None, tmp_path, spec=spec, force=True)
    assert again["f"].complete


def test_local_device_timeout_raises_with_partial_results(tiny_models, tmp_path):
    device = open_device("local")
    with pytest.raises(DeviceRunError, match="timeout after 1 s") as caught:
        device.run({"f": tiny_models["float"]}, None, tmp_path, spec=RunSpec(runs=10**8, warmup=0, timeout_s=1.0))
    partial = caught.value.results["f"]
    assert not partial.complete and len(partial.latencies_ms) > 0
    assert (tmp_path / "f.results.json").is_file()


def test_local_device_rejects_bad_tags_and_models(tiny_models, tmp_path):
    device = open_device("local")
    with pytest.raises(InputError, match="bad model tag"):
        device.run({"../x": tiny_models["float"]}, None, tmp_path)
    with pytest.raises(InputError, match="model not found"):
        device.run({"x": tmp_path / "missing.tflite"}, None, tmp_path)
