"""Figures of merit for one model run: accuracy, latency statistics, speed-up, size.

Pure numpy; agreement between two models goes through :mod:`edgesep.numerics`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgesep.errors import ShapeError

MB = 1024 * 1024


@dataclass(frozen=True)
class LatencyStats:
    """Latency of the timed runs (warm-up already excluded by the agent), in milliseconds.

    Percentiles are ``None`` when only a summary was reported (TFLite's ``benchmark_model``).
    """

    runs: int
    mean: float
    std: float
    p50: float | None
    p90: float | None
    p99: float | None
    min: float
    max: float

    @property
    def typical(self) -> float:
        """The median, or the mean when no percentiles are known."""
        return self.p50 if self.p50 is not None else self.mean

    def to_dict(self) -> dict:
        return asdict(self)


def latency_stats(latencies_ms: np.ndarray | list[float]) -> LatencyStats | None:
    """Summarise per-run latencies; ``None`` when nothing was timed."""
    values = np.asarray(latencies_ms, dtype=np.float64).ravel()
    if values.size == 0:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencyStats(
        runs=int(values.size),
        mean=float(values.mean()),
        std=float(values.std()),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        min=float(values.min()),
        max=float(values.max()),
    )


def latency_from_benchmark_model(summary: dict | None) -> LatencyStats | None:
    """Stats from ``benchmark_model``'s summary (microseconds: count, avg_us, std_us, min_us, max_us)."""
    if not summary or not summary.get("count") or summary.get("avg_us") is None:
        return None
    to_ms = {key: (None if summary.get(key) is None else summary[key] / 1000.0) for key in ("avg_us", "std_us", "min_us", "max_us")}
    mean = to_ms["avg_us"]
    assert mean is not None  # avg_us checked above
    return LatencyStats(
        runs=int(summary["count"]),
        mean=mean,
        std=to_ms["std_us"] if to_ms["std_us"] is not None else float("nan"),
        p50=None,
        p90=None,
        p99=None,
        min=to_ms["min_us"] if to_ms["min_us"] is not None else mean,
        max=to_ms["max_us"] if to_ms["max_us"] is not None else mean,
    )


def _check_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels).ravel()
    if scores.ndim > 2:  # e.g. (N, 1, classes)
        scores = scores.reshape(scores.shape[0], -1)
    if scores.ndim != 2:
        raise ShapeError(f"accuracy needs (batch, classes) outputs, got shape {scores.shape}")
    if scores.shape[0] != labels.shape[0]:
        raise ShapeError(f"{scores.shape[0]} outputs but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ShapeError(f"labels must lie in [0, {scores.shape[1] - 1}], got [{labels.min()}, {labels.max()}]")
    return scores, labels.astype(np.int64)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, *, k: int = 1) -> float | None:
    """Fraction of samples whose label is among the ``k`` highest scores.

    ``None`` when the model has no more than ``k`` classes (top-k would be trivially 1)
    for ``k > 1``, or when there are no samples.
    """
    scores, labels = _check_labels(scores, labels)
    if labels.size == 0 or (k > 1 and scores.shape[1] <= k):
        return None
    # Stable ordering: ties resolve to the lower class index, like argmax.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(order == labels[:, None], axis=1)))


def speedup(baseline: LatencyStats | None, candidate: LatencyStats | None) -> float | None:
    """Median-latency ratio baseline / candidate (>1 means the candidate is faster).

    Falls back to the means when either side has no percentiles.
    """
    if baseline is None or candidate is None:
        return None
    if baseline.p50 is not None and candidate.p50 is not None:
        base, cand = baseline.p50, candidate.p50
    else:
        base, cand = baseline.mean, candidate.mean
    return base / cand if cand > 0 else None


def size_mb(size_bytes: int | None) -> float | None:
    return None if size_bytes is None else size_bytes / MB


def size_ratio(baseline_bytes: int | None, candidate_bytes: int | None) -> float | None:
    """How many times smaller the candidate file is (baseline / candidate)."""
    if not baseline_bytes or not candidate_bytes:
        return None
    return baseline_bytes / candidate_bytes


def accuracy_drop_pp(baseline: float | None, candidate: float | None) -> float | None:
    """Accuracy lost by the candidate, in percentage points (negative = it gained)."""
    if baseline is None or candidate is None:
        return None
    return 100.0 * (baseline - candidate)


def top1_flips(baseline: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """``(lost, gained)``: samples the baseline got right and the candidate wrong, and the reverse.

    Over the common prefix of the three arrays (an interrupted run scores what it measured).
    """
    n = min(len(baseline), len(candidate), len(labels))
    base_scores, labels = _check_labels(np.asarray(baseline)[:n], np.asarray(labels)[:n])
    cand_scores, _ = _check_labels(np.asarray(candidate)[:n], labels)
    base_ok = base_scores.argmax(axis=1) == labels
    cand_ok = cand_scores.argmax(axis=1) == labels
    return int(np.sum(base_ok & ~cand_ok)), int(np.sum(~base_ok & cand_ok))


def mcnemar_p(lost: int, gained: int) -> float:
    """Exact two-sided McNemar p-value: could ``lost`` vs ``gained`` top-1 flips be chance (no real change)?

    Small (e.g. < 0.05) means the accuracy difference is unlikely to be noise from these samples.
    """
    import math

    n = lost + gained
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(lost, gained) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)
