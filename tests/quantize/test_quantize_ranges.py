"""Activation range methods on distributions whose best range is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesep.errors import CalibrationError, ConfigError
from edgesep.quantize.ranges import RANGE_METHODS, RangeConfig, RangeHistogram, compute_range


def _histogram(values: np.ndarray, chunks: int = 5) -> RangeHistogram:
    histogram = RangeHistogram()
    for chunk in np.array_split(values, chunks):
        histogram.update(chunk)
    return histogram


@pytest.fixture(scope="module")
def gaussian() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(1_000_000)


@pytest.fixture(scope="module")
def with_outliers(gaussian) -> np.ndarray:
    rng = np.random.default_rng(1)
    outliers = rng.uniform(25, 35, 5) * rng.choice([-1.0, 1.0], 5)
    return np.concatenate([gaussian, outliers])


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _theory_mse(alpha: float) -> float:
    """E[(x - Q(x))^2] for x ~ N(0, 1), 8-bit uniform quantizer on [-alpha, alpha]: rounding + clipping."""
    x = np.linspace(alpha, alpha + 12, 20001)
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    clipping = 2 * np.trapezoid((x - alpha) ** 2 * pdf, x)
    inside = 2 * _normal_cdf(np.array([alpha]))[0] - 1
    return (2 * alpha / 255) ** 2 / 12 * inside + clipping


def _sample_mse(values: np.ndarray, low: float, high: float) -> float:
    """Real 8-bit quantization error of ``values`` with range [low, high] (round to nearest, clip)."""
    step = (high - low) / 255
    q = np.clip(np.round((values - low) / step), 0, 255) * step + low
    return float(np.mean((values - q) ** 2))


def test_streamed_histogram_matches_one_shot(gaussian):
    small = gaussian[:1000] * 0.1
    streamed = _histogram(np.concatenate([small, gaussian[1000:100_000]]), chunks=9)
    whole = RangeHistogram()
    whole.update(np.concatenate([small, gaussian[1000:100_000]]))
    assert streamed.radius == whole.radius == 8.0
    np.testing.assert_array_equal(streamed.counts, whole.counts)
    assert streamed.count == 100_000
    assert streamed.max == float(gaussian[1000:100_000].max())


def test_percentile_matches_the_gaussian_quantile(with_outliers):
    low, high = compute_range(_histogram(with_outliers), RangeConfig(method="percentile", percentile=99.99))
    # the 99.99th percentile of N(0, 1) is 3.719; five outliers in a million barely move it
    assert abs(high - 3.719) < 0.05 and abs(low + 3.719) < 0.05
    assert high < 0.15 * with_outliers.max()


def test_mse_range_matches_the_numerical_optimum_for_a_gaussian(gaussian):
    alphas = np.linspace(2.5, 5.0, 251)
    theory = alphas[np.argmin([_theory_mse(a) for a in alphas])]
    assert 3.6 < theory < 4.2  # the known 8-bit optimum for a Gaussian, about 3.9 sigma
    low, high = compute_range(_histogram(gaussian), RangeConfig(method="mse"))
    assert abs(high - theory) < 0.1 and abs(low + theory) < 0.1


def test_mse_range_trades_outliers_against_rounding_like_brute_force(with_outliers):
    low, high = compute_range(_histogram(with_outliers), RangeConfig(method="mse"))
    minmax = (float(with_outliers.min()), float(with_outliers.max()))
    # with 5 outliers in 10^6 the true optimum (brute force below: ~15) still pays for part of the tail
    assert high < 0.5 * minmax[1] and low > 0.5 * minmax[0]
    # its real quantization error is within 5% of the best symmetric clip found by brute force
    best = min(_sample_mse(with_outliers, -a, a) for a in np.linspace(2.0, 35.0, 331))
    assert _sample_mse(with_outliers, low, high) < 1.05 * best
    assert _sample_mse(with_outliers, *minmax) > 2 * best


def test_entropy_range_clips_outliers(with_outliers):
    low, high = compute_range(_histogram(with_outliers), RangeConfig(method="entropy"))
    assert 3.0 < high < 5.5 and -5.5 < low < -3.0


@pytest.mark.parametrize("method", RANGE_METHODS)
def test_uniform_distribution_keeps_its_bounds(method):
    values = np.random.default_rng(2).uniform(-1.0, 1.0, 200_000)
    low, high = compute_range(_histogram(values), RangeConfig(method=method))
    assert abs(high - 1.0) < 0.02 and abs(low + 1.0) < 0.02


@pytest.mark.parametrize("method", RANGE_METHODS)
def test_relu_outputs_start_at_zero(gaussian, method):
    low, high = compute_range(_histogram(np.maximum(gaussian[:200_000], 0.0)), RangeConfig(method=method))
    assert low == 0.0
    assert 3.0 < high <= float(gaussian[:200_000].max())


def test_bad_configs_and_empty_histograms_raise():
    with pytest.raises(ConfigError):
        RangeConfig(method="median")
    with pytest.raises(ConfigError):
        RangeConfig(percentile=40)
    with pytest.raises(CalibrationError):
        compute_range(RangeHistogram())
    with pytest.raises(CalibrationError):
        RangeHistogram().update(np.array([1.0, np.nan]))
