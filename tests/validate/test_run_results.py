"""RunResults: save/load round trip and latency statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.errors import InputError, OutputExistsError
from edgesep.results import RunResults, load_dir


def _results(**changes) -> RunResults:
    base = dict(
        tag="int8",
        model_name="m_int8.tflite",
        model_bytes=1234,
        latencies_ms=np.array([1.0, 2.0, 3.0, 4.0, 10.0]),
        warmup=3,
        threads=2,
        outputs=np.arange(12, dtype=np.float32).reshape(3, 4),
        device={"cpu": "Cortex-A76", "cores": 4, "machine": "aarch64", "runtime": {"name": "ai_edge_litert", "version": "1.4.0"}},
        emulated=True,
        complete=False,
        error="timeout after 5 s",
        samples=3,
    )
    base.update(changes)
    return RunResults(**base)


def test_round_trip(tmp_path):
    original = _results()
    path = original.save(tmp_path)
    assert path.name == "int8.results.json"
    loaded = RunResults.load(path)
    np.testing.assert_array_equal(loaded.outputs, original.outputs)
    np.testing.assert_array_equal(loaded.latencies_ms, original.latencies_ms)
    for name in ("tag", "model_name", "model_bytes", "warmup", "threads", "device", "emulated", "complete", "error", "samples"):
        assert getattr(loaded, name) == getattr(original, name)
    assert loaded.runtime == "ai_edge_litert 1.4.0"
    with pytest.raises(OutputExistsError):
        original.save(tmp_path)
    assert set(load_dir(tmp_path)) == {"int8"}


def test_latency_stats():
    stats = _results().latency_stats()
    assert stats.count == 5 and stats.mean == pytest.approx(4.0) and stats.p50 == pytest.approx(3.0)
    assert stats.p99 == pytest.approx(9.76) and stats.std == pytest.approx(np.std([1, 2, 3, 4, 10]))
    assert np.isnan(_results(latencies_ms=np.array([])).latency_stats().mean)


def test_latency_only_results_have_no_outputs(tmp_path):
    path = _results(outputs=None, samples=0, source="benchmark_model").save(tmp_path)
    loaded = RunResults.load(path)
    assert loaded.outputs is None and loaded.source == "benchmark_model"
    assert not (tmp_path / "int8.outputs.npz").exists()


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        RunResults.load(tmp_path / "x.results.json")
    with pytest.raises(InputError, match="expected"):
        RunResults.load(tmp_path / "x.json")
    (tmp_path / "bad.results.json").write_text(json.dumps({"tag": "bad"}))
    with pytest.raises(InputError, match="lacks model_name, latencies_ms, device"):
        RunResults.load(tmp_path / "bad.results.json")
