"""Bias correction cancels the mean output shift of int8 weights (per-tensor, where it is largest)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from edgesep.errors import CalibrationError, ConfigError  # noqa: E402
from edgesep.quantize.bias_correction import (  # noqa: E402
    clipped_normal_mean,
    correct_bias,
    fake_quantize,
    quantize_weights,
    weight_error_means,
)
from edgesep.quantize.equalize import EqualizeConfig, equalize  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    from edgesep.data.digits import load_digits_split

    return load_digits_split()


@pytest.fixture(scope="module")
def model(digits):
    """A seeded SepCNN with spread-out BN affine parameters and BN statistics measured on the data."""
    from edgesep.models.sepcnn import sepcnn

    torch.manual_seed(0)
    net = sepcnn()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.exp(torch.randn(module.num_features, generator=generator)))
                module.bias.copy_(torch.rand(module.num_features, generator=generator) * 2 - 0.5)
                module.momentum = None  # cumulative average over the pass below
        net.train()
        net(torch.from_numpy(digits.x_train[:512]))
    return net.eval()


def _mean_shift(model, reference_model, x, *, per_channel) -> float:
    """Mean over logits of |E[y_int8-weights - y_float]| on ``x``."""
    with torch.no_grad():
        difference = quantize_weights(model, per_channel=per_channel)(x) - reference_model(x)
    return float(difference.mean(dim=0).abs().mean())


def test_empirical_correction_reduces_held_out_mean_error_per_tensor(model, digits):
    calibration = digits.x_train[:256]
    held_out = torch.from_numpy(digits.x_test)
    before = _mean_shift(model, model, held_out, per_channel=False)
    corrected, report = correct_bias(model, "empirical", per_channel=False, data=calibration)
    after = _mean_shift(corrected, model, held_out, per_channel=False)
    assert len(report.layers) >= 6 and report.max_shift > 0
    assert after < 0.6 * before, (before, after)


def test_analytic_correction_predicts_each_layers_own_shift_without_data(model, digits):
    """Analytic (data-free) estimates E[dW x] from BN statistics; checked against the measured shift per layer."""
    folded, report = correct_bias(model, "analytic", per_channel=False)
    plain, _ = correct_bias(model, "none")
    measured = weight_error_means(plain, digits.x_test, per_channel=False)
    assert len(report.layers) == 7  # every layer but the stem (fed by the image, no BN statistics)
    residual = total = 0.0
    for name in report.layers:
        applied = (plain.get_submodule(name).bias - folded.get_submodule(name).bias).detach()
        residual += float((measured[name] - applied).abs().sum())
        total += float(measured[name].abs().sum())
    assert residual < 0.25 * total, (residual, total)


def test_bias_correction_after_equalization_uses_its_statistics(model, digits):
    equalized, eq_report = equalize(model, config=EqualizeConfig())
    held_out = torch.from_numpy(digits.x_test)
    before = _mean_shift(equalized, model, held_out, per_channel=False)
    corrected, report = correct_bias(equalized, "analytic", per_channel=False, statistics=eq_report.statistics)
    assert len(report.layers) >= 6
    assert _mean_shift(corrected, model, held_out, per_channel=False) < 0.8 * before


def test_none_folds_only(model, digits):
    folded, report = correct_bias(model, "none")
    x = torch.from_numpy(digits.x_test[:16])
    with torch.no_grad():
        assert float((folded(x) - model(x)).abs().max()) < 1e-4
    assert report.layers == () and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())


def test_fake_quantize_matches_int8_grid():
    weight = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0)) * torch.logspace(-2, 1, 8).reshape(-1, 1, 1, 1)
    for per_channel in (True, False):
        quantized = fake_quantize(weight, per_channel=per_channel)
        bound = weight.abs().reshape(8, -1).amax(1) if per_channel else weight.abs().max().expand(8)
        scale = (bound / 127).reshape(-1, 1, 1, 1)
        steps = quantized / scale
        assert float((steps - steps.round()).abs().max()) < 1e-3
        assert float(((quantized - weight).abs() / scale).max()) <= 0.5 + 1e-4
    # per-tensor rounding wipes out the smallest channel entirely, per-channel keeps it
    assert float(fake_quantize(weight, per_channel=False)[0].abs().max()) == 0.0
    assert float(fake_quantize(weight, per_channel=True)[0].abs().max()) > 0.0


def test_clipped_normal_mean_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mu = torch.tensor([-1.0, 0.5, 3.0, 7.0], dtype=torch.float64)
    sigma = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    samples = rng.standard_normal((400_000, 1)) * sigma.numpy() + mu.numpy()
    for upper in (float("inf"), 6.0):
        expected = np.clip(samples, 0, upper).mean(axis=0)
        got = clipped_normal_mean(mu, sigma, torch.full_like(mu, upper)).numpy()
        np.testing.assert_allclose(got, expected, atol=0.01)


def test_bad_method_and_missing_data_raise(model):
    with pytest.raises(ConfigError):
        correct_bias(model, "magic")
    with pytest.raises(CalibrationError):
        correct_bias(model, "empirical")
