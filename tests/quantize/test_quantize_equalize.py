"""BN folding and cross-layer equalization: exact in float, and depthwise ranges become uniform."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from edgesep.errors import ConfigError  # noqa: E402
from edgesep.quantize.equalize import (  # noqa: E402
    ChannelClip,
    EqualizeConfig,
    channel_range_spread,
    equalize,
    find_pairs,
    fold_batch_norm,
)


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Trained-looking BN statistics with very different per-channel scales (what makes depthwise hard)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) * 2 - 1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 4 + 0.05)
                module.weight.copy_(torch.exp(torch.randn(n, generator=generator) * 1.5))
                module.bias.copy_(torch.rand(n, generator=generator) * 2 - 1)
    return model.eval()


def _relative(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    return float((reference - candidate).abs().max() / reference.abs().max())


@pytest.fixture(scope="module")
def sepcnn_model():
    from edgesep.models.sepcnn import sepcnn

    torch.manual_seed(0)
    return _randomize_bn(sepcnn(), seed=1)


@pytest.fixture(scope="module")
def inputs():
    return torch.from_numpy(np.random.default_rng(0).random((8, 1, 16, 16), dtype=np.float32))


def test_fold_batch_norm_is_exact(sepcnn_model, inputs):
    folded, names, stats = fold_batch_norm(sepcnn_model)
    assert len(names) == 7 and set(stats) == set(names)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        assert _relative(sepcnn_model(inputs), folded(inputs)) < 1e-5


def test_equalize_preserves_function_and_flattens_depthwise_ranges(sepcnn_model, inputs):
    folded, _, _ = fold_batch_norm(sepcnn_model)
    equalized, report = equalize(sepcnn_model, config=EqualizeConfig(absorb_bias=False))
    assert len(report.pairs) == 7  # stem->dw, dw->pw x3, pw->dw x2, pw->classifier
    assert report.final_change < 1e-3
    with torch.no_grad():
        assert _relative(sepcnn_model(inputs), equalized(inputs)) < 1e-5
    before = [channel_range_spread(folded.features[i].depthwise) for i in (1, 2, 3)]
    after = [channel_range_spread(equalized.features[i].depthwise) for i in (1, 2, 3)]
    assert min(before) > 20  # the randomized BN makes the folded depthwise channels very uneven
    assert max(after) < max(before) / 5
    assert np.mean(after) < np.mean(before) / 10


def test_pairs_of_a_mobilenet_v2_depend_on_the_relu6_policy():
    from edgesep.models.mobilenet import mobilenet_v2

    torch.manual_seed(0)
    model = _randomize_bn(mobilenet_v2(width_mult=0.35, input_size=32, num_classes=10), seed=2)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = model(x)
        skipped, skip_report = equalize(model, config=EqualizeConfig(relu6="skip", absorb_bias=False))
        clipped, clip_report = equalize(model, config=EqualizeConfig(relu6="clip", absorb_bias=False))
        assert _relative(reference, skipped(x)) < 1e-5
        assert _relative(reference, clipped(x)) < 1e-5  # per-channel clip bounds keep ReLU6 exact
    assert all(p.kind != "relu6" for p in skip_report.pairs)
    assert len(clip_report.pairs) > 5 * max(1, len(skip_report.pairs))
    assert sum(isinstance(m, ChannelClip) for m in clipped.modules()) == len(clip_report.replaced)
    bounds = torch.cat([m.upper.reshape(-1) for m in clipped.modules() if isinstance(m, ChannelClip)])
    assert float(bounds.std()) > 0.1  # equalization really rescaled the clip bounds


def test_relu6_replaced_by_relu_is_reported_and_not_exact():
    block = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU6(), nn.Conv2d(2, 2, 1)).eval()
    with torch.no_grad():
        block[0].weight.copy_(torch.tensor([[[[20.0]], [[0.0]]], [[[0.0]], [[0.05]]]]))
        block[2].weight.copy_(torch.tensor([[[[0.01]], [[1.0]]], [[[0.02]], [[3.0]]]]))
    x = torch.full((1, 2, 1, 1), 1.0)
    equalized, report = equalize(block, config=EqualizeConfig(relu6="relu"))
    assert report.replaced == ("1",)
    with torch.no_grad():
        assert _relative(block(x), equalized(x)) > 1e-2  # 20 > 6 is no longer clipped


def test_high_bias_absorption_moves_bias_into_the_pointwise_layer():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1))
    with torch.no_grad():
        block[0].weight.mul_(0.01)
        block[1].bias.copy_(torch.tensor([2.0, 0.0, 3.0, -1.0]))
        block[1].weight.fill_(0.1)
    block.eval()
    x = torch.rand(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    equalized, report = equalize(block, config=EqualizeConfig(absorb_sigmas=3.0))
    assert report.absorbed == ("0",)
    with torch.no_grad():
        assert _relative(block(x), equalized(x)) < 1e-5
    plain, _ = equalize(block, config=EqualizeConfig(absorb_bias=False))
    ratio = (equalized[0].bias / plain[0].bias).detach().numpy()
    # channels 0 and 2 keep only 3 sigma = 0.3 of their bias 2 and 3; 1 and 3 (beta <= 3 sigma) keep all
    np.testing.assert_allclose(ratio[[0, 2, 3]], [0.15, 0.1, 1.0], rtol=1e-4)


def test_config_rejects_unknown_relu6_mode():
    with pytest.raises(ConfigError):
        EqualizeConfig(relu6="drop")


def test_find_pairs_ignores_shared_and_residual_paths():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 3, 1)
            self.b = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            y = self.a(x)
            return self.b(y) + y

    assert find_pairs(Residual()) == []
