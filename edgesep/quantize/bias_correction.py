"""Bias correction: remove the mean shift that int8 weight rounding adds to each layer's output.

With quantized weights ``W_q = W + dW`` a layer outputs ``W x + dW x``; ``E[dW x]`` is a per-channel
offset that int8 (above all per-tensor int8 on depthwise layers) adds to every activation.  Subtracting it
from the bias before conversion cancels it.  ``E[x]`` comes from

* ``"empirical"``: measured on calibration data, layer by layer in execution order: the mean output with
  int8 weights (upstream layers already corrected) minus the float mean, which also cancels the shift that
  arrives from earlier layers (one pass over the data per layer, stopped at the layer);
* ``"analytic"``: the folded BatchNorm statistics of the layer feeding it (Nagel et al. 2019): its
  pre-activation is ``N(beta, gamma^2)`` per channel, so ``E[relu(z)]``/``E[relu6(z)]`` are closed-form.
  Layers fed by the network input (no BN before them) are left alone.

``dW`` simulates TFLite's int8 weights: symmetric, ``[-127, 127]``, per output channel or per tensor.
The model's BatchNorms are folded first (the exported graph quantizes folded weights).  Works on a copy;
torch is imported at module level, so import this module lazily.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from edgesep.errors import CalibrationError, ConfigError
from edgesep.quantize.equalize import ChannelClip, find_pairs, fold_batch_norm

BIAS_CORRECTIONS = ("none", "empirical", "analytic")


@dataclass(frozen=True)
class BiasCorrectionReport:
    method: str
    layers: tuple[str, ...]
    max_shift: float  # largest |correction| applied to any bias entry

    def to_dict(self) -> dict:
        return {"method": self.method, "layers": list(self.layers), "max_shift": self.max_shift}


def fake_quantize(weight: torch.Tensor, *, per_channel: bool, bits: int = 8) -> torch.Tensor:
    """Symmetric int8 round trip as TFLite quantizes weights: ``round(w / s) * s``, ``s = max|w| / 127``."""
    levels = 2 ** (bits - 1) - 1
    if per_channel:
        bound = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)
        bound = bound.reshape(-1, *([1] * (weight.dim() - 1)))
    else:
        bound = weight.detach().abs().max()
    scale = torch.where(bound > 0, bound / levels, torch.ones_like(bound))
    return torch.clamp(torch.round(weight / scale), -levels, levels) * scale


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d | nn.Linear]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@torch.no_grad()
def quantize_weights(model: nn.Module, *, per_channel: bool, bits: int = 8) -> nn.Module:
    """A copy with every Conv2d/Linear weight fake-quantized (float simulation of int8 weights)."""
    model = copy.deepcopy(model).eval()
    for _, layer in weighted_layers(model):
        layer.weight.copy_(fake_quantize(layer.weight, per_channel=per_channel, bits=bits))
    return model


def _weight_error(layer: nn.Conv2d | nn.Linear, per_channel: bool, bits: int) -> torch.Tensor:
    return fake_quantize(layer.weight, per_channel=per_channel, bits=bits) - layer.weight


def _layer(model: nn.Module, name: str) -> nn.Conv2d | nn.Linear:
    """The Conv2d/Linear called ``name`` (shifts and pairs only name such layers)."""
    return cast("nn.Conv2d | nn.Linear", model.get_submodule(name))


def _apply(layer: nn.Conv2d | nn.Linear, shift: torch.Tensor) -> None:
    if layer.bias is None:
        layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype))
    layer.bias.sub_(shift)


@torch.no_grad()
def correct_bias(
    model: nn.Module,
    method: str = "empirical",
    *,
    per_channel: bool = True,
    data: np.ndarray | torch.Tensor | None = None,
    statistics: dict | None = None,
    bits: int = 8,
    batch_size: int = 64,
) -> tuple[nn.Module, BiasCorrectionReport]:
    """A BN-folded copy of ``model`` whose biases cancel ``E[dW x]``; ``statistics`` = EqualizeReport.statistics
    when the model was already folded/equalized (analytic needs them)."""
    if method not in BIAS_CORRECTIONS:
        raise ConfigError(f"bias_correction must be one of {', '.join(BIAS_CORRECTIONS)}, got {method!r}")
    folded, _, stats = fold_batch_norm(model)
    if statistics:
        stats = {**statistics, **stats}
    if hasattr(model, "input_shape"):
        folded.input_shape = model.input_shape
    if method == "none":
        return folded, BiasCorrectionReport(method, (), 0.0)
    if method == "empirical":
        if data is None or len(data) == 0:
            raise CalibrationError("empirical bias correction needs calibration data")
        shifts = _empirical_shifts(folded, torch.as_tensor(np.asarray(data, dtype=np.float32)), per_channel, bits, batch_size)
    else:
        shifts = _analytic_shifts(folded, stats, per_channel, bits)
    largest = 0.0
    for name, shift in shifts.items():
        _apply(_layer(folded, name), shift)
        largest = max(largest, float(shift.abs().max()))
    return folded, BiasCorrectionReport(method, tuple(shifts), largest)


class _Stop(Exception):
    """Ends a forward pass once the layer being measured has run."""


def _output_means(model: nn.Module, data: torch.Tensor, names: list[str], batch_size: int, *, stop: bool) -> dict:
    """Per named layer: the mean over samples (and positions) of its output channels."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            dims = (0, 2, 3) if output.dim() == 4 else tuple(range(output.dim() - 1))
            sums[name] = sums.get(name, 0) + output.sum(dim=dims)
            counts[name] = counts.get(name, 0) + output.numel() // output.shape[1 if output.dim() == 4 else -1]
            if stop:
                raise _Stop

        return hook

    handles = [model.get_submodule(name).register_forward_hook(hook_for(name)) for name in names]
    try:
        for start in range(0, len(data), batch_size):
            try:
                model(data[start : start + batch_size])
            except _Stop:
                pass
    finally:
        for handle in handles:
            handle.remove()
    return {name: sums[name] / counts[name] for name in sums}


def _empirical_shifts(model: nn.Module, data: torch.Tensor, per_channel: bool, bits: int, batch_size: int) -> dict:
    """Layer by layer in execution order: ``E[y]`` with int8 weights (earlier layers already corrected)
    minus ``E[y]`` of the float model, so the correction also cancels shifts arriving from upstream."""
    names = [name for name, _ in weighted_layers(model)]
    order: list[str] = []
    handles = [
        model.get_submodule(n).register_forward_hook(lambda _m, _i, _o, n=n: order.append(n) if n not in order else None) for n in names
    ]
    try:
        model(data[:1])
    finally:
        for handle in handles:
            handle.remove()
    reference = _output_means(model, data, order, batch_size, stop=False)
    quantized = quantize_weights(model, per_channel=per_channel, bits=bits)
    shifts = {}
    for name in order:
        measured = _output_means(quantized, data, [name], batch_size, stop=True)[name]
        shift = measured - reference[name]
        _apply(_layer(quantized, name), shift)
        shifts[name] = shift
    return shifts


@torch.no_grad()
def weight_error_means(
    model: nn.Module, data: np.ndarray | torch.Tensor, *, per_channel: bool, bits: int = 8, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """Per Conv2d/Linear: ``E[dW x]`` per output channel with ``x`` the layer's float input on ``data``
    (the shift each layer adds on its own; what the analytic correction estimates without data)."""
    data = torch.as_tensor(np.asarray(data, dtype=np.float32))
    errors = {name: _weight_error(layer, per_channel, bits) for name, layer in weighted_layers(model)}
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook_for(name: str, layer: nn.Module):
        def hook(_module, inputs):
            if isinstance(layer, nn.Conv2d):
                out = layer._conv_forward(inputs[0], errors[name], None)  # noqa: SLF001 - the layer's geometry
                total, n = out.sum(dim=(0, 2, 3)), out.shape[0] * out.shape[2] * out.shape[3]
            else:
                out = torch.nn.functional.linear(inputs[0], errors[name])
                total, n = out.reshape(-1, out.shape[-1]).sum(dim=0), out.numel() // out.shape[-1]
            sums[name] = sums.get(name, 0) + total
            counts[name] = counts.get(name, 0) + n

        return hook

    handles = [layer.register_forward_pre_hook(hook_for(name, layer)) for name, layer in weighted_layers(model)]
    try:
        for start in range(0, len(data), batch_size):
            model(data[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    return {name: sums[name] / counts[name] for name in sums}


def _analytic_shifts(model: nn.Module, stats: dict, per_channel: bool, bits: int) -> dict:
    """Per layer fed through (ReLU|ReLU6|clip|linear) by a folded-BN layer: ``dW`` applied to ``E[act(z)]``.

    For convolutions ``E[x]`` is laid out as a constant image of the layer's input size (known when the
    model has ``input_shape``), so zero padding at the borders is accounted for exactly.
    """
    sizes = _input_sizes(model)
    shifts = {}
    for pair in find_pairs(model):
        if pair.first not in stats or pair.kind == "mixed":
            continue
        beta, sigma = stats[pair.first]
        if pair.kind == "relu":
            upper = torch.full_like(beta, float("inf"))
        elif pair.kind == "relu6":
            upper = torch.full_like(beta, 6.0)
        elif pair.kind == "clip":
            assert pair.activation is not None  # clip pairs always name their activation
            upper = cast(ChannelClip, model.get_submodule(pair.activation)).upper.reshape(-1)
        else:
            upper = None
        mean = beta if upper is None else clipped_normal_mean(beta, sigma, upper)
        layer = _layer(model, pair.second)
        error = _weight_error(layer, per_channel, bits)
        if isinstance(layer, nn.Conv2d):
            height, width = sizes.get(pair.second, (layer.kernel_size[0] * 4, layer.kernel_size[1] * 4))
            image = mean.reshape(1, -1, 1, 1).expand(1, mean.numel(), height, width)
            shifts[pair.second] = layer._conv_forward(image, error, None).mean(dim=(0, 2, 3))  # noqa: SLF001
        else:
            shifts[pair.second] = error @ mean
    return shifts


def _input_sizes(model: nn.Module) -> dict[str, tuple[int, int]]:
    """(H, W) of every Conv2d's input for one forward pass of zeros of ``model.input_shape`` (empty if unknown)."""
    shape = getattr(model, "input_shape", None)
    if shape is None or len(shape) != 4:
        return {}
    sizes: dict[str, tuple[int, int]] = {}
    handles = [
        layer.register_forward_pre_hook(lambda _m, inputs, n=name: sizes.__setitem__(n, tuple(inputs[0].shape[-2:])))
        for name, layer in weighted_layers(model)
        if isinstance(layer, nn.Conv2d)
    ]
    try:
        model(torch.zeros(1, *shape[1:]))
    finally:
        for handle in handles:
            handle.remove()
    return sizes


def clipped_normal_mean(mu: torch.Tensor, sigma: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """``E[clip(z, 0, upper)]`` for ``z ~ N(mu, sigma^2)`` (``upper = inf`` gives ReLU)."""
    safe = torch.clamp(sigma, min=1e-12)
    a = (0.0 - mu) / safe
    b = (upper - mu) / safe
    cdf_a, cdf_b = torch.special.ndtr(a), torch.special.ndtr(b)
    pdf_a = torch.exp(-0.5 * a**2) / np.sqrt(2 * np.pi)
    pdf_b = torch.where(torch.isfinite(b), torch.exp(-0.5 * b**2) / np.sqrt(2 * np.pi), torch.zeros_like(b))
    top = torch.where(torch.isfinite(upper), upper * (1 - cdf_b), torch.zeros_like(upper))
    mean = mu * (cdf_b - cdf_a) + safe * (pdf_a - pdf_b) + top
    return torch.where(sigma > 0, mean, torch.clamp(mu, min=torch.zeros_like(mu), max=upper))


__all__ = [
    "BIAS_CORRECTIONS",
    "BiasCorrectionReport",
    "clipped_normal_mean",
    "correct_bias",
    "fake_quantize",
    "quantize_weights",
    "weight_error_means",
]
