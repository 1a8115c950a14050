"""Helpers for the prune tests: seeded BN statistics, zeroing channels to prune, a tiny residual model.

A uniquely named module (not conftest) so that `from prune_helpers import ...` works when several test
folders run together."""

from __future__ import annotations

import torch
from torch import nn

from edgesep.prune.graph import CONSUMER, PRODUCER, analyze, prunable


def randomize_bn(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics so that eval-mode outputs depend on every BN entry."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean = torch.randn(n, generator=generator) * 0.1
            module.running_var = torch.rand(n, generator=generator) + 0.5
            module.weight.data = torch.rand(n, generator=generator) + 0.5
            module.bias.data = torch.randn(n, generator=generator) * 0.1
    return model.eval()


def zero_channels(model: nn.Module, input_shape, *, keep_fraction: float = 0.5) -> dict[str, list[int]]:
    """Zero the filters (producers) and input slices (consumers) of the last channels of every prunable
    group, so that removing them cannot change the output.  Returns the zeroed channel indices per group."""
    modules = dict(model.named_modules())
    zeroed: dict[str, list[int]] = {}
    with torch.no_grad():
        for group in prunable(analyze(model, input_shape)):
            drop = list(range(int(group.size * keep_fraction), group.size))
            zeroed[group.producers[0].name] = drop
            for member in group.members:
                module = modules[member.name]
                if member.role == PRODUCER:
                    module.weight[drop] = 0.0
                    if module.bias is not None:
                        module.bias[drop] = 0.0
                elif member.role == CONSUMER:
                    for c in drop:
                        module.weight[:, c * member.factor : (c + 1) * member.factor] = 0.0
    return zeroed


class TinyResidual(nn.Module):
    """stem -> two residual separable blocks sharing channels -> concat branch (not prunable) -> head."""

    def __init__(self) -> None:
        super().__init__()
        self.input_shape = (1, 3, 12, 12)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = nn.Sequential(
            nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
            nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
            nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16),
        )  # fmt: skip
        self.block2 = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16),
            nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16),
        )  # fmt: skip
        self.side = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(24 * 9, 5)
        self.pool = nn.AdaptiveAvgPool2d(3)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.block1(x)
        x = self.block2(x) + x
        x = torch.cat([x, self.side(x)], dim=1)
        return self.head(torch.flatten(self.pool(x), 1))
