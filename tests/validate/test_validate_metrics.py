"""Metrics against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from edgesep.errors import ShapeError
from edgesep.validate.metrics import (
    accuracy_drop_pp,
    latency_stats,
    size_mb,
    size_ratio,
    speedup,
    topk_accuracy,
)

SCORES = np.array(
    [
        [0.1, 0.7, 0.2, 0.0, 0.0, 0.0],  # top1 = 1, top5 excludes one of classes 3,4,5
        [0.5, 0.1, 0.4, 0.0, 0.0, 0.0],  # top1 = 0
        [0.0, 0.0, 0.0, 0.0, 0.1, 0.9],  # top1 = 5
        [0.2, 0.3, 0.1, 0.15, 0.05, 0.2],  # top1 = 1, lowest = 4
    ],
    dtype=np.float32,
)


def test_top1_accuracy_hand_computed():
    labels = np.array([1, 2, 5, 0])
    assert topk_accuracy(SCORES, labels, k=1) == pytest.approx(2 / 4)


def test_top5_accuracy_hand_computed():
    # Row 3's label 4 is its lowest score -> the only miss in top-5.
    labels = np.array([1, 2, 5, 4])
    assert topk_accuracy(SCORES, labels, k=5) == pytest.approx(3 / 4)
    assert topk_accuracy(SCORES, labels, k=2) == pytest.approx(3 / 4)  # row 1: label 2 is 2nd
    assert topk_accuracy(SCORES, labels, k=1) == pytest.approx(2 / 4)


def test_top5_is_none_with_five_or_fewer_classes():
    assert topk_accuracy(SCORES[:, :5], np.array([1, 2, 4, 0]), k=5) is None


def test_top1_ties_resolve_like_argmax():
    scores = np.array([[0.5, 0.5, 0.0]])
    assert topk_accuracy(scores, np.array([0]), k=1) == 1.0
    assert topk_accuracy(scores, np.array([1]), k=1) == 0.0


def test_accuracy_flattens_singleton_axes():
    assert topk_accuracy(SCORES[:, None, :], np.array([1, 2, 5, 0]), k=1) == pytest.approx(0.5)


def test_accuracy_rejects_label_count_and_range():
    with pytest.raises(ShapeError, match="4 outputs but 3 labels"):
        topk_accuracy(SCORES, np.array([1, 2, 3]))
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 5\]"):
        topk_accuracy(SCORES, np.array([1, 2, 3, 6]))


def test_latency_stats_hand_computed():
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 10.0])
    assert stats.runs == 5
    assert stats.mean == pytest.approx(4.0)
    assert stats.std == pytest.approx(np.sqrt((9 + 4 + 1 + 0 + 36) / 5))
    assert stats.p50 == pytest.approx(3.0)
    # linear interpolation: p90 at rank 3.6 -> 4 + 0.6 * 6
    assert stats.p90 == pytest.approx(7.6)
    assert stats.p99 == pytest.approx(4 + 0.96 * 6)
    assert (stats.min, stats.max) == (1.0, 10.0)


def test_latency_stats_empty_is_none():
    assert latency_stats([]) is None


def test_speedup_size_and_drop():
    fast, slow = latency_stats([1.0, 1.0, 1.0]), latency_stats([3.0, 3.0, 3.0])
    assert speedup(slow, fast) == pytest.approx(3.0)
    assert speedup(fast, slow) == pytest.approx(1 / 3)
    assert speedup(None, fast) is None
    assert size_ratio(4_000_000, 1_000_000) == pytest.approx(4.0)
    assert size_mb(3 * 1024 * 1024) == pytest.approx(3.0)
    assert accuracy_drop_pp(0.95, 0.93) == pytest.approx(2.0)
    assert accuracy_drop_pp(0.90, 0.91) == pytest.approx(-1.0)
    assert accuracy_drop_pp(None, 0.5) is None


def test_benchmark_model_summary():
    from edgesep.validate.metrics import latency_from_benchmark_model

    stats = latency_from_benchmark_model({"count": 50, "avg_us": 1500.0, "std_us": 100.0, "min_us": 1200.0, "max_us": 2100.0})
    assert (stats.runs, stats.mean, stats.std, stats.min, stats.max) == (50, 1.5, 0.1, 1.2, 2.1)
    assert stats.p50 is None and stats.typical == 1.5
    assert latency_from_benchmark_model({"count": None, "avg_us": 3.0}) is None
    assert latency_from_benchmark_model(None) is None
    # speed-up falls back to means when one side has no percentiles
    assert speedup(latency_stats([3.0, 3.0]), stats) == pytest.approx(2.0)


def test_top1_flips_hand_computed():
    from edgesep.validate.metrics import top1_flips

    labels = np.array([0, 1, 2, 3])
    base = np.eye(4)[[0, 1, 0, 3]]  # right, right, wrong, right
    cand = np.eye(4)[[0, 2, 2, 1]]  # right, wrong, right, wrong
    assert top1_flips(base, cand, labels) == (2, 1)
    assert top1_flips(base, cand[:2], labels) == (1, 0)  # common prefix


def test_mcnemar_exact_hand_computed():
    from edgesep.validate.metrics import mcnemar_p

    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(1, 1) == 1.0
    assert mcnemar_p(5, 0) == pytest.approx(2 / 32)  # 2 * 0.5**5
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
