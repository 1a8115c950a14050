"""Pointwise activations.  Patterns are chosen so that the TFLite converter fuses them into
the producing Conv/FullyConnected (Relu, Relu6, ReluN1To1) or into one op (HardSwish, PRelu)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgesep.convert.layout import Layout, Value, as_plain, broadcast_nhwc, nhwc_axis
from edgesep.convert.registry import register


def _unary(value: Value, function) -> Value:
    """A pointwise function keeps the layout of its input, whatever it is."""
    return replace(value, data=function(value.data))


@register("Relu")
def relu(node, ctx):
    import tensorflow as tf

    return [_unary(ctx.get(node, 0), tf.nn.relu)]


@register("Clip")
def clip(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    low = ctx.const(node, 1, what="min")
    high = ctx.const(node, 2, what="max")
    low = float(low) if low is not None else node.attr("min", None)
    high = float(high) if high is not None else node.attr("max", None)
    if low == 0.0 and high == 6.0:
        return [_unary(value, tf.nn.relu6)]
    if low == 0.0 and high is None:
        return [_unary(value, tf.nn.relu)]
    if low == -1.0 and high == 1.0:
        return [_unary(value, lambda x: tf.clip_by_value(x, -1.0, 1.0))]

    def clipped(x):
        if low is not None:
            x = tf.maximum(x, np.array(low, dtype=x.dtype.as_numpy_dtype))
        if high is not None:
            x = tf.minimum(x, np.array(high, dtype=x.dtype.as_numpy_dtype))
        return x

    return [_unary(value, clipped)]


@register("LeakyRelu")
def leaky_relu(node, ctx):
    import tensorflow as tf

    alpha = float(node.attr("alpha", 0.01))
    return [_unary(ctx.get(node, 0), lambda x: tf.nn.leaky_relu(x, alpha=alpha))]


@register("PRelu")
def prelu(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    slope = ctx.get(node, 1)
    nhwc = value.layout == Layout.NHWC
    x = value.data if nhwc else as_plain(value)
    if slope.is_const:
        # relu(x) + relu(-x) * (-alpha) with alpha of rank input-1: the pattern the converter makes one PRELU
        alpha = slope.data.reshape((1,) * max(value.rank - slope.data.ndim, 0) + slope.data.shape)
        if nhwc:
            alpha = alpha.transpose(0, 2, 3, 1)
        if alpha.ndim == value.rank and alpha.shape[0] == 1:
            alpha = alpha[0]
        dtype = x.dtype.as_numpy_dtype
        if ctx.integer:
            # x + (1 - alpha) * relu(-x): ops XNNPACK runs in int8; an int8 PRELU (or a standalone RELU / MINIMUM
            # with its own scales) stays on TFLite's kernels. With every alpha < 1 (the usual slopes) this is
            # x + relu((alpha - 1) * x): MUL (fused RELU) + ADD, one op fewer (MTCNN O-Net int8: 0.94x the time)
            if np.all(alpha < 1.0):
                negative_part = tf.constant(np.ascontiguousarray(alpha - 1.0).astype(dtype))
                return [Value(x + tf.nn.relu(x * negative_part), Layout.NHWC if nhwc else Layout.PLAIN)]
            keep = tf.constant(np.ascontiguousarray(1.0 - alpha).astype(dtype))
            return [Value(x + tf.nn.relu(x * dtype(-1.0)) * keep, Layout.NHWC if nhwc else Layout.PLAIN)]
        negative = tf.constant(np.ascontiguousarray(-alpha).astype(dtype))
        return [Value(tf.nn.relu(x) + tf.nn.relu(-x) * negative, Layout.NHWC if nhwc else Layout.PLAIN)]
    alpha = tf.cast(broadcast_nhwc(slope) if nhwc else as_plain(slope), x.dtype)
    return [Value(tf.nn.relu(x) - alpha * tf.nn.relu(-x), Layout.NHWC if nhwc else Layout.PLAIN)]


@register("Sigmoid")
def sigmoid(node, ctx):
    import tensorflow as tf

    return [_unary(ctx.get(node, 0), tf.math.sigmoid)]


@register("Tanh")
def tanh(node, ctx):
    import tensorflow as tf

    return [_unary(ctx.get(node, 0), tf.math.tanh)]


@register("HardSigmoid")
def hard_sigmoid(node, ctx):
    import tensorflow as tf

    alpha = float(node.attr("alpha", 0.2))
    beta = float(node.attr("beta", 0.5))
    # clip(alpha x + beta, 0, 1) = relu6(6 alpha x + 6 beta) / 6: ADD with a fused RELU6, which XNNPACK runs in
    # float and int8 (a MINIMUM with its own int8 scales is left to TFLite's kernels)
    scale, offset = 6.0 * alpha, 6.0 * beta

    def hard(x):
        return tf.nn.relu6((x if np.isclose(scale, 1.0) else x * scale) + offset) * (1.0 / 6.0)

    return [_unary(ctx.get(node, 0), hard)]


@register("HardSwish")
def hard_swish(node, ctx):
    import tensorflow as tf

    if ctx.integer:
        # (x * relu6(x + 3)) * 1/6: ADD (fused RELU6), MUL, MUL, which XNNPACK runs in int8. The 1/6 has the
        # input's rank (1, 1, 1, 1): as a true scalar the converter folds the pattern into HARD_SWISH, whose int8
        # kernel XNNPACK leaves to TFLite; per channel it made PP-OCRv5 cls's int8 slower than float. The product
        # is requantized once at full range (x / 6 first lost 9 points of cosine on PP-OCRv5 cls).
        def hard_swish_int8(x):
            sixth = np.full((1,) * len(x.shape), 1.0 / 6.0, x.dtype.as_numpy_dtype)
            return (x * tf.nn.relu6(x + 3.0)) * sixth

        return [_unary(ctx.get(node, 0), hard_swish_int8)]
    # x * relu6(x + 3) / 6: the converter folds this pattern into a single HARD_SWISH op (delegated in float)
    return [_unary(ctx.get(node, 0), lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0))]


@register("Elu")
def elu(node, ctx):
    import tensorflow as tf

    alpha = float(node.attr("alpha", 1.0))
    if alpha != 1.0:
        raise ctx.unsupported(node, f"alpha={alpha} (only 1.0)")
    return [_unary(ctx.get(node, 0), tf.nn.elu)]


@register("Softmax", "LogSoftmax")
def softmax(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    rank = value.rank
    axis = int(node.attr("axis", -1 if ctx.opset >= 13 else 1))
    axis %= rank
    if ctx.opset < 13 and axis != rank - 1:
        raise ctx.unsupported(node, f"opset<13 softmax flattens from axis {axis}; only the last axis is supported")
    function = tf.nn.softmax if node.op_type == "Softmax" else tf.nn.log_softmax
    if value.layout == Layout.NHWC:
        return [Value(function(value.data, axis=nhwc_axis(axis)), Layout.NHWC)]
    return [Value(function(as_plain(value), axis=axis))]
