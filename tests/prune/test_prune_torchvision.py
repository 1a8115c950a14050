"""The fx analysis is generic: torchvision's MobileNetV2 (functional pooling, torch.flatten) prunes exactly."""

from __future__ import annotations

import numpy as np
import torch
from prune_helpers import randomize_bn, zero_channels

from edgesep.prune import PruneConfig, prune


def test_torchvision_mobilenet_v2_prunes_exactly():
    import torchvision

    torch.manual_seed(0)
    model = randomize_bn(torchvision.models.mobilenet_v2(weights=None, width_mult=0.35, num_classes=10), seed=4)
    shape = (1, 3, 32, 32)
    zeroed = zero_channels(model, shape, keep_fraction=0.5)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        reference = model(x).numpy()
    result = prune(model, config=PruneConfig(ratio=0.5, round_to=2), input_shape=shape)
    with torch.no_grad():
        pruned = result.model(x).numpy()
    assert len(result.kept_channels) == len(zeroed) >= 20
    assert all(after == before // 2 for before, after in result.kept_channels.values() if before % 4 == 0)
    np.testing.assert_allclose(pruned, reference, rtol=0, atol=1e-4)
    assert result.macs_after < 0.45 * result.macs_before
