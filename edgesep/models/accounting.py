"""Per-layer parameters and MACs, totals, and the standard-conv equivalent of each depthwise-separable pair.

MACs are multiply-accumulates of one forward pass at the given input shape (batch included), counted for
convolutions (``H_out * W_out * C_out * K_h * K_w * C_in / groups`` per image) and fully-connected layers
(``in * out`` per row); biases, BatchNorm, activations and pooling count 0 MACs.  For a depthwise KxK conv
over C channels followed by a pointwise 1x1 conv to M channels at output size HxW:

    separable weights  K^2*C + C*M          standard conv weights  K^2*C*M
    separable MACs    (K^2*C + C*M)*H*W     standard conv MACs     K^2*C*M*H*W
    ratio = separable / standard = 1/M + 1/K^2   (for both weights and MACs)

PyTorch modules are measured with forward hooks on a dry run; ONNX files in ``accounting_onnx``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, cast

from edgesep.errors import InputError


@dataclass(frozen=True)
class LayerCount:
    """One row: a module (PyTorch) or a node (ONNX) that holds parameters or does MACs."""

    name: str
    type: str
    params: int
    macs: int = 0
    kernel: tuple[int, int] | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int | None = None
    stride: tuple[int, int] | None = None
    output_shape: tuple[int, ...] | None = None
    weights: int = 0  # the conv/linear weight tensor only (no bias, no BN)

    @property
    def is_depthwise(self) -> bool:
        return (
            self.type in ("Conv2d", "Conv")
            and self.groups is not None
            and self.groups > 1
            and self.groups == self.in_channels == self.out_channels
        )

    @property
    def is_pointwise(self) -> bool:
        return self.type in ("Conv2d", "Conv") and self.kernel == (1, 1) and self.groups == 1 and self.stride == (1, 1)


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise conv followed by a pointwise conv, compared with the standard conv it replaces."""

    depthwise: str
    pointwise: str
    kernel: tuple[int, int]
    in_channels: int  # C
    out_channels: int  # M
    output_hw: tuple[int, int]  # H, W
    batch: int
    params: int  # K^2*C + C*M (weights only)
    macs: int  # (K^2*C + C*M)*H*W*batch
    standard_params: int  # K^2*C*M
    standard_macs: int  # K^2*C*M*H*W*batch

    @property
    def ratio(self) -> float:
        """separable / standard = 1/M + 1/K^2."""
        return self.params / self.standard_params

    @property
    def exact_ratio(self) -> Fraction:
        return Fraction(self.params, self.standard_params)

    @property
    def saving(self) -> float:
        """How many times fewer weights (and MACs) than the standard conv."""
        return self.standard_params / self.params

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "saving": self.saving}


@dataclass(frozen=True)
class ModelAccounting:
    source: str
    format: str  # "pytorch" | "onnx"
    input_shape: tuple[int, ...]
    layers: tuple[LayerCount, ...]
    pairs: tuple[SeparablePair, ...]
    total_params: int
    total_macs: int
    notes: tuple[str, ...] = field(default=())

    @property
    def total_weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def separable_params(self) -> int:
        return sum(p.params for p in self.pairs)

    @property
    def standard_equivalent_params(self) -> int:
        return sum(p.standard_params for p in self.pairs)

    @property
    def separable_macs(self) -> int:
        return sum(p.macs for p in self.pairs)

    @property
    def standard_equivalent_macs(self) -> int:
        return sum(p.standard_macs for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "input_shape": list(self.input_shape),
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "total_weights": self.total_weights,
            "layers": [asdict(layer) for layer in self.layers],
            "pairs": [pair.to_dict() for pair in self.pairs],
            "separable": {
                "params": self.separable_params,
                "standard_params": self.standard_equivalent_params,
                "macs": self.separable_macs,
                "standard_macs": self.standard_equivalent_macs,
            },
            "notes": list(self.notes),
        }


def _shape(layer: LayerCount) -> tuple[int, ...]:
    """``output_shape`` of a row known to have one."""
    assert layer.output_shape is not None
    return layer.output_shape


def find_pairs(layers: Sequence[LayerCount], *, batch: int = 1) -> tuple[SeparablePair, ...]:
    """Pair each depthwise conv with the next conv in execution order when that one is pointwise on its output.

    Convs at 1x1 spatial size in between (squeeze-and-excitation branches) are skipped.
    """
    convs = [layer for layer in layers if layer.type in ("Conv2d", "Conv") and layer.output_shape is not None]
    pairs = []
    for index, dw in enumerate(convs):
        dw_shape = _shape(dw)
        if not dw.is_depthwise or len(dw_shape) != 4:
            continue
        h, w = dw_shape[2], dw_shape[3]
        following = [c for c in convs[index + 1 :] if (h, w) == (1, 1) or tuple(_shape(c)[2:]) != (1, 1)]
        pw = following[0] if following else None
        if pw is None or not pw.is_pointwise or pw.in_channels != dw.out_channels:
            continue
        if tuple(_shape(pw)[2:]) != (h, w):
            continue
        assert dw.kernel is not None  # a depthwise conv with a 4-D output has a 2-D kernel
        kh, kw = dw.kernel
        c, m = dw.in_channels, pw.out_channels
        assert c is not None and m is not None  # set on every conv row
        pairs.append(
            SeparablePair(
                depthwise=dw.name,
                pointwise=pw.name,
                kernel=(kh, kw),
                in_channels=c,
                out_channels=m,
                output_hw=(h, w),
                batch=batch,
                params=kh * kw * c + c * m,
                macs=(kh * kw * c + c * m) * h * w * batch,
                standard_params=kh * kw * c * m,
                standard_macs=kh * kw * c * m * h * w * batch,
            )
        )
    return tuple(pairs)


def count_module(model, input_shape: Sequence[int], *, source: str = "") -> ModelAccounting:
    """Account an ``nn.Module``: one dry run on zeros with forward hooks on every submodule."""
    import torch

    shape = tuple(int(d) for d in input_shape)
    names = {module: name or "(model)" for name, module in model.named_modules()}
    calls: list[tuple[Any, tuple[int, ...], int]] = []  # (module, output shape, macs) per call, in order

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            calls.append((module, tuple(output.shape), _module_macs(module, inputs, output)))

    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    except (RuntimeError, ValueError, IndexError) as error:
        from edgesep.errors import ShapeError

        known = getattr(model, "input_shape", None)
        first_conv = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
        hint = ""
        if known is not None:
            hint = f"; the model expects {tuple(known)}"
        elif first_conv is not None:
            hint = f"; its first convolution expects {first_conv.in_channels} input channels (N,{first_conv.in_channels},H,W)"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ShapeError(f"input shape {shape} does not fit {type(model).__name__}{hint} ({first})") from error
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    first_shape: dict[Any, tuple[int, ...]] = {}
    macs: dict[Any, int] = {}
    order: list[Any] = []
    for module, out_shape, module_macs in calls:
        if module not in first_shape:
            first_shape[module] = out_shape
            order.append(module)
        macs[module] = macs.get(module, 0) + module_macs
    seen_params: set[int] = set()
    rows = []
    for module in order + [m for m in names if m not in first_shape]:
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen_params]
        seen_params.update(id(p) for p in own)
        params = sum(p.numel() for p in own)
        if params == 0 and macs.get(module, 0) == 0:
            continue
        rows.append(_module_row(names[module], module, params, macs.get(module, 0), first_shape.get(module)))
    layers = tuple(rows)
    total_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    return ModelAccounting(
        source=source or type(model).__name__,
        format="pytorch",
        input_shape=shape,
        layers=layers,
        pairs=find_pairs(layers, batch=shape[0]),
        total_params=total_params,
        total_macs=sum(layer.macs for layer in layers),
    )


def _module_macs(module, inputs, output) -> int:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * kh * kw * (module.in_channels // module.groups)
    if isinstance(module, nn.Conv1d):
        return output.numel() * module.kernel_size[0] * (module.in_channels // module.groups)
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0].numel() * kh * kw * (module.out_channels // module.groups)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _module_row(name: str, module, params: int, macs: int, output_shape) -> LayerCount:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        return LayerCount(
            name=name,
            type="Conv2d",
            params=params,
            macs=macs,
            kernel=cast("tuple[int, int]", tuple(module.kernel_size)),
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            groups=module.groups,
            stride=cast("tuple[int, int]", tuple(module.stride)),
            output_shape=output_shape,
            weights=module.weight.numel(),
        )
    if isinstance(module, nn.Linear):
        return LayerCount(
            name=name,
            type="Linear",
            params=params,
            macs=macs,
            in_channels=module.in_features,
            out_channels=module.out_features,
            output_shape=output_shape,
            weights=module.weight.numel(),
        )
    weight = getattr(module, "weight", None)
    is_weight_layer = isinstance(module, (nn.Conv1d, nn.Conv3d, nn.ConvTranspose2d)) and weight is not None
    return LayerCount(
        name=name,
        type=type(module).__name__,
        params=params,
        macs=macs,
        output_shape=output_shape,
        weights=weight.numel() if is_weight_layer and weight is not None else 0,
    )


def count_model(model: Any, *, input_shape: Sequence[int] | None = None, source: str = "") -> ModelAccounting:
    """Dispatch: an ``nn.Module`` or a path to an ``.onnx`` file."""
    from pathlib import Path

    if isinstance(model, (str, Path)):
        from edgesep.models.accounting_onnx import count_onnx

        return count_onnx(model, input_shape=input_shape)

    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise InputError(f"{type(model).__name__} does not declare its input shape; pass --input-shape N,C,H,W")
    return count_module(model, shape, source=source)
