"""compare_runs on hand-built RunResults-shaped data."""

from __future__ import annotations

import numpy as np
import pytest

from edgesep.errors import InputError, ShapeError
from edgesep.validate.comparison import compare_runs


def _pair(fake_run, *, n=50, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    logits = rng.standard_normal((n, classes)).astype(np.float32)
    logits[np.arange(n), labels] += 10.0  # a good classifier: 100% here
    quant = logits.copy()
    flip = [3, 17]  # make the candidate wrong on exactly two samples
    for i in flip:
        quant[i, labels[i]] = -10.0
    base = fake_run("float", "m.tflite", 400_000, np.full(20, 2.0), logits)
    cand = fake_run("quant", "m_int8.tflite", 100_000, np.full(20, 0.5), quant)
    return base, cand, labels, logits, quant


def test_compare_runs_figures(fake_run):
    base, cand, labels, logits, quant = _pair(fake_run)
    result = compare_runs(base, cand, labels=labels)
    assert result.baseline.top1 == pytest.approx(1.0)
    assert result.candidate.top1 == pytest.approx(48 / 50)
    assert result.accuracy_drop_pp == pytest.approx(4.0)
    assert result.flips == (2, 0)
    assert result.agreement.top1_agreement == pytest.approx(48 / 50)
    assert result.agreement.max_abs == pytest.approx(float(np.max(np.abs(logits - quant))), rel=1e-6)
    expected_cos = float(
        np.dot(logits.ravel().astype(np.float64), quant.ravel())
        / (np.linalg.norm(logits.astype(np.float64)) * np.linalg.norm(quant.astype(np.float64)))
    )
    assert result.agreement.cosine == pytest.approx(expected_cos, rel=1e-9)
    assert result.speedup == pytest.approx(4.0)
    assert result.size_ratio == pytest.approx(4.0)
    assert result.baseline.latency.p50 == pytest.approx(2.0)
    assert result.candidate.samples == 50
    payload = result.to_dict()
    assert payload["candidate"]["latency_ms"]["p50"] == pytest.approx(0.5)
    assert payload["emulated"] is False
    assert (payload["top1_lost"], payload["top1_gained"], payload["mcnemar_p"]) == (2, 0, 0.5)


def test_compare_runs_without_labels_has_no_accuracy(fake_run):
    base, cand, *_ = _pair(fake_run)
    result = compare_runs(base, cand)
    assert result.baseline.top1 is None and result.accuracy_drop_pp is None and result.flips is None
    assert result.agreement.top1_agreement == pytest.approx(0.96)


def test_emulated_flag_propagates(fake_run):
    base, cand, labels, *_ = _pair(fake_run)
    cand.emulated = True
    assert compare_runs(base, cand, labels=labels).emulated is True


def test_interrupted_run_scores_what_was_measured(fake_run):
    base, cand, labels, *_ = _pair(fake_run)
    cand.outputs = cand.outputs[:10]
    cand.complete = False
    result = compare_runs(base, cand, labels=labels)
    assert result.candidate.samples == 10
    assert result.candidate.top1 == pytest.approx(9 / 10)  # sample 3 is wrong
    assert result.flips == (1, 0)
    assert result.agreement.top1_agreement == pytest.approx(9 / 10)


def test_mismatches_are_typed_errors(fake_run):
    base, cand, labels, *_ = _pair(fake_run)
    with pytest.raises(ShapeError, match="labels"):
        compare_runs(base, cand, labels=labels[:10])
    cand.outputs = cand.outputs[:10]
    with pytest.raises(ShapeError, match="baseline has 50 outputs"):
        compare_runs(base, cand)
    cand.outputs = None
    with pytest.raises(InputError):
        compare_runs(base, cand)


def test_benchmark_model_run_summarises_from_its_summary(fake_run):
    from edgesep.validate.comparison import summarize
    from edgesep.validate.table import bench_rows

    run = fake_run("bm", "m.tflite", 1024 * 1024, np.array([]), None)
    run.extra = {"benchmark_model": {"count": 20, "avg_us": 2500.0, "std_us": 50.0, "min_us": 2400.0, "max_us": 2700.0}}
    summary = summarize(run)
    assert summary.latency.runs == 20 and summary.latency.mean == pytest.approx(2.5)
    assert summary.samples == 0 and summary.top1 is None
    row = bench_rows([summary], ["benchmark_model unknown"])[0]
    assert row[:8] == ["m.tflite", "20", "-", "-", "-", "2.500", "0.05", "1.00x"]
    fast = summarize(fake_run("fast", "fast.tflite", 1024, np.array([0.5, 0.5]), None))
    assert bench_rows([summary, fast], ["a", "b"])[1][7] == "5.00x"  # means: 2.5 ms / 0.5 ms
