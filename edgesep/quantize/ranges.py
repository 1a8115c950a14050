"""Activation ranges from histograms: min/max, percentile, MSE-optimal and entropy (KL, TensorRT-style).

A :class:`RangeHistogram` accumulates one tensor's values over the calibration set in a fixed number of
bins over ``[-R, R]``; ``R`` doubles (merging bin pairs, exactly) when a larger value arrives, so the
histogram streams in constant memory.  :func:`compute_range` turns it into the ``(lo, hi)`` the int8
quantizer should use; the range always contains 0 (TFLite's asymmetric int8 needs an exact zero).
Light module: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgesep.errors import CalibrationError, ConfigError

RANGE_METHODS = ("minmax", "percentile", "mse", "entropy")


@dataclass(frozen=True)
class RangeConfig:
    """``method`` and its knobs: the per-tail ``percentile``, the integer ``bits`` of the activations."""

    method: str = "minmax"
    percentile: float = 99.99
    bits: int = 8
    bins: int = 4096

    def __post_init__(self) -> None:
        if self.method not in RANGE_METHODS:
            raise ConfigError(f"activation range method must be one of {', '.join(RANGE_METHODS)}, got {self.method!r}")
        if not 50.0 < float(self.percentile) <= 100.0:
            raise ConfigError(f"percentile must be in (50, 100], got {self.percentile}")
        if not 2 <= int(self.bits) <= 16:
            raise ConfigError(f"bits must be in [2, 16], got {self.bits}")
        if int(self.bins) < 256 or int(self.bins) % 4:
            raise ConfigError(f"bins must be a multiple of 4 and at least 256, got {self.bins}")


class RangeHistogram:
    """Streaming histogram of one tensor over ``[-R, R]`` (``R`` a power of two), plus its exact min/max."""

    def __init__(self, *, bins: int = 4096) -> None:
        if bins % 4 or bins < 8:
            raise ConfigError(f"bins must be a multiple of 4, got {bins}")
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.float64)
        self.radius = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.zeros = 0.0  # exact zeros (ReLU outputs): representable exactly, left out of the KL search

    @property
    def count(self) -> float:
        return float(self.counts.sum())

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-self.radius, self.radius, self.bins + 1)

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            return
        if not np.all(np.isfinite(values)):
            raise CalibrationError("activation values contain NaN or infinity")
        low, high = float(values.min()), float(values.max())
        self.min, self.max = min(self.min, low), max(self.max, high)
        self.zeros += float(np.count_nonzero(values == 0.0))
        extent = max(abs(low), abs(high))
        if self.radius == 0.0:
            self.radius = 2.0 ** math.ceil(math.log2(extent)) if extent > 0 else 2.0**-20
        while extent > self.radius:
            self._double()
        index = np.floor((values + self.radius) / (2 * self.radius) * self.bins).astype(np.int64)
        np.clip(index, 0, self.bins - 1, out=index)
        self.counts += np.bincount(index, minlength=self.bins)

    def _double(self) -> None:
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        quarter = self.bins // 4
        counts = np.zeros_like(self.counts)
        counts[quarter : quarter + merged.size] = merged
        self.counts = counts
        self.radius *= 2.0

    def centers(self) -> np.ndarray:
        edges = self.edges
        return 0.5 * (edges[:-1] + edges[1:])


def compute_range(histogram: RangeHistogram, config: RangeConfig = RangeConfig()) -> tuple[float, float]:
    """The ``(lo, hi)`` int8 range of a filled histogram by ``config.method``; always contains 0."""
    if histogram.count == 0:
        raise CalibrationError("cannot compute a range from an empty histogram")
    if config.method == "minmax":
        low, high = histogram.min, histogram.max
    elif config.method == "percentile":
        low, high = _percentile_range(histogram, config.percentile)
    elif config.method == "mse":
        low, high = _mse_range(histogram, config.bits)
    else:
        low, high = _entropy_range(histogram, config.bits)
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        high = low + 1e-8
    return float(low), float(high)


def _percentile_range(histogram: RangeHistogram, percentile: float) -> tuple[float, float]:
    """Per tail: the value below which ``percentile`` % of the mass lies (linear inside a bin)."""
    cdf = np.cumsum(histogram.counts) / histogram.count
    edges = histogram.edges
    tail = 1.0 - percentile / 100.0

    def quantile(q: float) -> float:
        i = int(np.searchsorted(cdf, q, side="left"))
        i = min(i, len(cdf) - 1)
        before = cdf[i - 1] if i > 0 else 0.0
        inside = (q - before) / max(cdf[i] - before, 1e-300)
        return float(edges[i] + np.clip(inside, 0.0, 1.0) * (edges[i + 1] - edges[i]))

    low = max(histogram.min, quantile(tail)) if tail > 0 else histogram.min
    high = min(histogram.max, quantile(1.0 - tail)) if tail > 0 else histogram.max
    return low, high


def expected_mse(histogram: RangeHistogram, low: np.ndarray, high: np.ndarray, bits: int) -> np.ndarray:
    """Expected squared error of a uniform ``bits`` quantizer on ``[low, high]`` (arrays of candidates).

    In range: ``step^2 / 12`` (rounding error of a fine quantizer); outside: the squared clipping distance.
    """
    used = histogram.counts > 0  # only occupied bins contribute (often far fewer than all)
    centers = histogram.centers()[used]
    weights = histogram.counts[used] / histogram.count
    low = np.atleast_1d(np.asarray(low, dtype=np.float64))[:, None]
    high = np.atleast_1d(np.asarray(high, dtype=np.float64))[:, None]
    step = (high - low) / (2**bits - 1)
    clipped = np.clip(centers[None, :], low, high)
    inside = (centers[None, :] >= low) & (centers[None, :] <= high)
    error = np.where(inside, step**2 / 12.0, (centers[None, :] - clipped) ** 2)
    return (error * weights[None, :]).sum(axis=1)


def _mse_range(histogram: RangeHistogram, bits: int, *, candidates: int = 400, rounds: int = 3) -> tuple[float, float]:
    """Minimize :func:`expected_mse` over the clip bounds: alternate 1-D searches over ``hi`` and ``lo``."""
    low, high = min(histogram.min, 0.0), max(histogram.max, 0.0)
    fractions = np.linspace(1.0 / candidates, 1.0, candidates)
    for _ in range(rounds):
        if high > 0:
            options = fractions * max(histogram.max, 0.0)
            high = float(options[np.argmin(expected_mse(histogram, np.full_like(options, low), options, bits))])
        if low < 0:
            options = fractions * min(histogram.min, 0.0)
            low = float(options[np.argmin(expected_mse(histogram, options, np.full_like(options, high), bits))])
    return low, high


def _entropy_range(histogram: RangeHistogram, bits: int) -> tuple[float, float]:
    """TensorRT's KL calibration on the |x| histogram: the threshold whose quantized distribution is closest.

    Signed tensors use ``2**(bits-1)`` levels per side, non-negative ones (after ReLU) all ``2**bits``.
    Exact zeros are left out: int8 represents them exactly, and their spike would dominate the divergence.
    """
    half = histogram.bins // 2
    magnitude = histogram.counts[half:].copy()
    magnitude += histogram.counts[:half][::-1]
    magnitude[0] = max(0.0, magnitude[0] - histogram.zeros)
    width = histogram.radius / half
    extent = max(abs(histogram.min), abs(histogram.max))
    used = max(1, min(half, int(math.ceil(extent / width))))
    magnitude = magnitude[:used]
    levels = 2**bits if histogram.min >= 0 else 2 ** (bits - 1)
    if used <= levels:
        return histogram.min, histogram.max
    best_i, best_kl = used, math.inf
    stride = max(1, (used - levels) // 256)  # at most ~256 candidate thresholds
    for i in range(levels, used + 1, stride):
        reference = magnitude[:i].copy()
        reference[-1] += magnitude[i:].sum()
        candidate = _quantize_distribution(magnitude[:i], levels)
        kl = _kl_divergence(reference, candidate)
        if kl < best_kl:
            best_i, best_kl = i, kl
    threshold = best_i * width
    return max(histogram.min, -threshold), min(histogram.max, threshold)


def _quantize_distribution(counts: np.ndarray, levels: int) -> np.ndarray:
    """Merge ``counts`` into ``levels`` bins, then spread each back evenly over its non-empty source bins."""
    size, extra = divmod(counts.size, levels)
    sizes = np.full(levels, size, dtype=np.int64)
    sizes[:extra] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nonzero = counts > 0
    sums = np.add.reduceat(counts, starts)
    filled = np.add.reduceat(nonzero.astype(np.float64), starts)
    group = np.repeat(np.arange(levels), sizes)
    share = np.divide(sums, filled, out=np.zeros_like(sums), where=filled > 0)
    return np.where(nonzero, share[group], 0.0)


def _kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    p = reference / reference.sum()
    q_total = candidate.sum()
    if q_total == 0:
        return math.inf
    q = candidate / q_total
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
