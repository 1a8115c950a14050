"""Channel importance criteria: one small function per name, looked up in ``CRITERIA``."""

from __future__ import annotations

from collections.abc import Callable

from edgesep.prune.graph import PASSTHROUGH, ChannelGroup


def _filter_norms(group: ChannelGroup, modules: dict, *, power: int):
    import torch

    total = torch.zeros(group.size, dtype=torch.float64)
    for member in group.producers:
        weight = modules[member.name].weight.detach().double().reshape(group.size, -1)
        norms = weight.abs().sum(dim=1) if power == 1 else weight.pow(2).sum(dim=1).sqrt()
        total += norms
    return total


def l1(group: ChannelGroup, modules: dict):
    """Sum over the group's producers of each output filter's L1 norm."""
    return _filter_norms(group, modules, power=1)


def l2(group: ChannelGroup, modules: dict):
    """Sum over the group's producers of each output filter's L2 norm."""
    return _filter_norms(group, modules, power=2)


def bn(group: ChannelGroup, modules: dict):
    """Network slimming: |gamma| of the group's BatchNorm layers (L1 of filters when there is none)."""
    import torch
    from torch import nn

    norms = [
        modules[m.name].weight.detach().double().abs()
        for m in group.members
        if m.role == PASSTHROUGH and isinstance(modules[m.name], nn.BatchNorm2d) and modules[m.name].affine
    ]
    if not norms:
        return l1(group, modules)
    return torch.stack(norms).sum(dim=0)


CRITERIA: dict[str, Callable] = {"l1": l1, "l2": l2, "bn": bn}
