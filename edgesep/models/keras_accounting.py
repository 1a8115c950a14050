"""Parameters and MACs of a Keras model, in the same ModelAccounting as PyTorch and ONNX models.

Rows use the ONNX-style type ``"Conv"`` (with ``groups``) and NCHW output shapes so that
``find_pairs`` finds depthwise + pointwise pairs and reports the separable savings
(ratio 1/M + 1/K^2) exactly as for PyTorch.  DepthwiseConv2D has ``groups = C``; SeparableConv2D
is split into its depthwise and pointwise rows.  BatchNorm counts gamma and beta (its moving
statistics are buffers, as in PyTorch).  The batch dimension is taken as 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgesep.models.accounting import LayerCount, ModelAccounting, find_pairs


def count_keras(model_or_path: Any, *, source: str = "") -> ModelAccounting:
    """Account a ``keras.Model`` or a .keras/.h5 file (batch 1)."""
    if isinstance(model_or_path, (str, Path)):
        from edgesep.models.keras_loading import load_keras

        source = source or str(model_or_path)
        model = load_keras(model_or_path)
    else:
        model = model_or_path
    input_shape = _nchw((1, *tuple(model.inputs[0].shape)[1:]))
    rows: list[LayerCount] = []
    for layer in _leaf_layers(model):
        rows.extend(_rows(layer))
    layers = tuple(rows)
    return ModelAccounting(
        source=source or model.name,
        format="keras",
        input_shape=input_shape,
        layers=layers,
        pairs=find_pairs(layers, batch=1),
        total_params=sum(r.params for r in layers),
        total_macs=sum(r.macs for r in layers),
        notes=("Keras shapes shown as NCHW; BatchNorm moving statistics are not counted (buffers)",),
    )


def _leaf_layers(model) -> list:
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # nested Sequential / Functional
            found.extend(_leaf_layers(layer))
        else:
            found.append(layer)
    return found


def _nchw(shape: tuple) -> tuple[int, ...]:
    dims = tuple(1 if d is None else int(d) for d in shape)
    dims = (1, *dims[1:])
    return (dims[0], dims[3], dims[1], dims[2]) if len(dims) == 4 else dims


def _size(weight) -> int:
    return int(math.prod(weight.shape))


def _rows(layer) -> list[LayerCount]:
    kind = type(layer).__name__
    out_shape = tuple(layer.output.shape)
    nchw = _nchw(out_shape)
    bias = _size(layer.bias) if getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None else 0
    if kind == "DepthwiseConv2D":
        kh, kw, c, mult = layer.kernel.shape
        weights = _size(layer.kernel)
        return [LayerCount(
            name=layer.name, type="Conv", params=weights + bias, macs=math.prod(nchw) * kh * kw,
            kernel=(kh, kw), in_channels=c, out_channels=c * mult, groups=c,
            stride=tuple(layer.strides), output_shape=nchw, weights=weights,
        )]  # fmt: skip
    if kind == "Conv2D":
        kh, kw, per_group, out = layer.kernel.shape
        groups = int(getattr(layer, "groups", 1))
        weights = _size(layer.kernel)
        return [LayerCount(
            name=layer.name, type="Conv", params=weights + bias, macs=math.prod(nchw) * kh * kw * per_group,
            kernel=(kh, kw), in_channels=per_group * groups, out_channels=out, groups=groups,
            stride=tuple(layer.strides), output_shape=nchw, weights=weights,
        )]  # fmt: skip
    if kind == "SeparableConv2D":
        kh, kw, c, mult = layer.depthwise_kernel.shape
        out = layer.pointwise_kernel.shape[-1]
        dw_shape = (nchw[0], c * mult, nchw[2], nchw[3])
        dw_weights, pw_weights = _size(layer.depthwise_kernel), _size(layer.pointwise_kernel)
        return [
            LayerCount(
                name=f"{layer.name}/depthwise", type="Conv", params=dw_weights, macs=math.prod(dw_shape) * kh * kw,
                kernel=(kh, kw), in_channels=c, out_channels=c * mult, groups=c,
                stride=tuple(layer.strides), output_shape=dw_shape, weights=dw_weights,
            ),
            LayerCount(
                name=f"{layer.name}/pointwise", type="Conv", params=pw_weights + bias, macs=math.prod(nchw) * c * mult,
                kernel=(1, 1), in_channels=c * mult, out_channels=out, groups=1,
                stride=(1, 1), output_shape=nchw, weights=pw_weights,
            ),
        ]  # fmt: skip
    if kind == "Dense":
        inner, units = layer.kernel.shape
        weights = _size(layer.kernel)
        rows_out = math.prod((1, *[1 if d is None else int(d) for d in out_shape[1:-1]]))
        return [LayerCount(
            name=layer.name, type="Dense", params=weights + bias, macs=rows_out * inner * units,
            in_channels=inner, out_channels=units, output_shape=nchw, weights=weights,
        )]  # fmt: skip
    if kind == "BatchNormalization":
        params = sum(_size(w) for w in (layer.gamma, layer.beta) if w is not None)
        return [LayerCount(name=layer.name, type=kind, params=params, output_shape=nchw)]
    params = sum(_size(w) for w in layer.weights)
    return [LayerCount(name=layer.name, type=kind, params=params, output_shape=nchw)] if params else []
