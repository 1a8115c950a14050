"""Broadcasting binary ops and simple unary math; NHWC operands stay NHWC."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgesep.convert.layout import Layout, Value, as_plain, broadcast_nhwc
from edgesep.convert.registry import register

_BINARY = {
    "Add": lambda tf: tf.add,
    "Sub": lambda tf: tf.subtract,
    "Mul": lambda tf: tf.multiply,
    "Div": lambda tf: tf.divide,
    "Pow": lambda tf: tf.pow,
    "Max": lambda tf: tf.maximum,
    "Min": lambda tf: tf.minimum,
}


def _out_rank(values: list[Value]) -> int:
    return max(v.rank for v in values)


def align(values: list[Value]) -> tuple[list, Layout, tuple | None]:
    """Bring broadcasting operands into one storage layout; returns (tensors, layout, chw)."""
    import tensorflow as tf

    rank = _out_rank(values)
    dtype = next((v.data.dtype for v in values if not v.is_const), None)
    np_dtype = dtype.as_numpy_dtype if dtype is not None else None

    def constant(array):
        return tf.constant(np.asarray(array, dtype=np_dtype) if np_dtype is not None else array)

    if rank == 4 and any(v.layout == Layout.NHWC for v in values):
        tensors = []
        for v in values:
            if v.is_const:
                tensors.append(tf.cast(broadcast_nhwc(v), dtype))
            else:
                tensors.append(broadcast_nhwc(v))
        return tensors, Layout.NHWC, None
    flats = [v for v in values if v.layout == Layout.FLAT_HWC]
    if flats and all(v.layout == Layout.FLAT_HWC or (v.is_const and v.data.size == 1) for v in values):
        chw = flats[0].chw
        if all(v.chw == chw for v in flats):
            return [v.data if not v.is_const else constant(v.data.reshape(())) for v in values], Layout.FLAT_HWC, chw
    return [constant(v.data) if v.is_const else as_plain(v) for v in values], Layout.PLAIN, None


def _binary(node, ctx):
    import tensorflow as tf

    function = _BINARY[node.op_type](tf)
    operands = [ctx.get(node, i) for i in range(len(node.inputs))]
    tensors, layout, chw = align(operands)
    if ctx.integer and node.op_type in ("Add", "Sub") and layout == Layout.NHWC:
        affine = _bias_as_depthwise(node.op_type, operands, tensors)
        if affine is not None:
            return [Value(affine, Layout.NHWC)]
    result = tensors[0]
    for tensor in tensors[1:]:
        result = function(result, tensor)
    return [Value(result, layout, chw)]


def _bias_as_depthwise(op_type: str, operands: list[Value], tensors: list):
    """For int8: ``x + c`` / ``x - c`` / ``c - x`` with ``c`` a scalar or per-channel constant, as a 1x1
    DEPTHWISE_CONV_2D with weight +-1 and bias c. The bias is kept in int32 at the input's scale, where an int8
    constant beside a wide activation loses it and XNNPACK refuses the ADD (input scales too far apart)."""
    import tensorflow as tf

    if len(operands) != 2 or operands[0].is_const == operands[1].is_const:
        return None
    x_index = 0 if not operands[0].is_const else 1
    x, constant = tensors[x_index], operands[1 - x_index].data
    channels = int(x.shape[3])
    if constant.size not in (1, channels) or constant.size != constant.reshape(-1).size:
        return None
    if constant.size == channels and constant.ndim == 4 and constant.shape[1] != channels:
        return None  # not laid out per channel (NCHW [1, C, 1, 1])
    dtype = x.dtype.as_numpy_dtype
    sign = -1.0 if (op_type == "Sub" and x_index == 1) else 1.0
    bias = np.broadcast_to(constant.reshape(-1), (channels,)).astype(dtype)
    if op_type == "Sub" and x_index == 0:
        bias = -bias
    weight = np.full((1, 1, channels, 1), sign, dtype)
    y = tf.raw_ops.DepthwiseConv2dNative(input=x, filter=tf.constant(weight), strides=[1, 1, 1, 1], padding="VALID")
    return tf.nn.bias_add(y, tf.constant(bias))


for _op in ("Add", "Sub", "Mul", "Div", "Pow"):
    register(_op)(_binary)


@register("Max", "Min", "Sum", "Mean")
def variadic(node, ctx):
    import tensorflow as tf

    operands = [ctx.get(node, i) for i in range(len(node.inputs))]
    tensors, layout, chw = align(operands)
    if node.op_type == "Max":
        result = tensors[0]
        for t in tensors[1:]:
            result = tf.maximum(result, t)
    elif node.op_type == "Min":
        result = tensors[0]
        for t in tensors[1:]:
            result = tf.minimum(result, t)
    else:
        result = tensors[0]
        for t in tensors[1:]:
            result = result + t
        if node.op_type == "Mean":
            result = result * (1.0 / len(tensors))
    return [Value(result, layout, chw)]


_UNARY = {
    "Sqrt": "sqrt",
    "Exp": "exp",
    "Log": "log",
    "Abs": "abs",
    "Neg": "negative",
    "Reciprocal": "reciprocal",
    "Floor": "floor",
    "Ceil": "ceil",
    "Erf": "erf",
    "Sin": "sin",
    "Cos": "cos",
}


@register(*_UNARY)
def unary_math(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    function = getattr(tf.math, _UNARY[node.op_type])
    return [replace(value, data=function(value.data))]
