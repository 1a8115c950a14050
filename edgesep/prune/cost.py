"""Parameter and multiply-accumulate counts of an nn.Module on one input shape."""

from __future__ import annotations


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_macs(model, input_shape: tuple[int, ...]) -> int:
    """MACs of Conv2d and Linear layers for one forward pass of ``input_shape`` (batch 1 counted)."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(module, inputs, output):
        nonlocal total
        per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        total += int(output[:1].numel()) * per_output

    def linear_hook(module, inputs, output):
        nonlocal total
        total += int(output[:1].numel()) * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape[1:])))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
