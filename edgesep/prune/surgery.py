"""Remove channels from modules in place: slice weights and fix the recorded sizes."""

from __future__ import annotations

from edgesep.prune.graph import CONSUMER, PASSTHROUGH, PRODUCER, ChannelGroup


def apply_keep(group: ChannelGroup, keep, modules: dict) -> None:
    """Keep only channels ``keep`` (sorted LongTensor) of ``group`` in every member module."""
    for member in group.members:
        module = modules[member.name]
        if member.role == PRODUCER:
            _slice_out(module, keep)
        elif member.role == PASSTHROUGH:
            _slice_passthrough(module, keep)
        elif member.role == CONSUMER:
            _slice_in(module, keep, factor=member.factor)


def _set(module, name: str, value) -> None:
    from torch import nn

    setattr(module, name, nn.Parameter(value.detach().clone(), requires_grad=getattr(module, name).requires_grad))


def _slice_out(module, keep) -> None:
    from torch import nn

    _set(module, "weight", module.weight.data[keep])
    if module.bias is not None:
        _set(module, "bias", module.bias.data[keep])
    if isinstance(module, nn.Linear):
        module.out_features = len(keep)
    else:
        module.out_channels = len(keep)


def _slice_passthrough(module, keep) -> None:
    from torch import nn

    if isinstance(module, nn.Conv2d):  # depthwise: one filter per channel
        _set(module, "weight", module.weight.data[keep])
        if module.bias is not None:
            _set(module, "bias", module.bias.data[keep])
        module.in_channels = module.out_channels = module.groups = len(keep)
        return
    # BatchNorm2d
    if module.affine:
        _set(module, "weight", module.weight.data[keep])
        _set(module, "bias", module.bias.data[keep])
    if module.running_mean is not None:
        module.running_mean = module.running_mean[keep].clone()
        module.running_var = module.running_var[keep].clone()
    module.num_features = len(keep)


def _slice_in(module, keep, *, factor: int) -> None:
    import torch
    from torch import nn

    if isinstance(module, nn.Linear):
        index = (keep[:, None] * factor + torch.arange(factor)[None, :]).reshape(-1)
        _set(module, "weight", module.weight.data[:, index])
        module.in_features = len(index)
    else:
        _set(module, "weight", module.weight.data[:, keep])
        module.in_channels = len(keep)
