"""BatchNormalization (inference) as a per-channel multiply-add the converter folds into the Conv."""

from __future__ import annotations

import numpy as np

from edgesep.convert.layout import Layout, Value, as_plain
from edgesep.convert.registry import register


@register("BatchNormalization")
def batch_norm(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    gamma, beta, mean, var = (ctx.const(node, i, what=w) for i, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
    if node.attr("training_mode", 0):
        raise ctx.unsupported(node, "training_mode=1")
    epsilon = float(node.attr("epsilon", 1e-5))
    scale = (gamma / np.sqrt(var.astype(np.float64) + epsilon)).astype(np.float64)
    shift = beta - mean * scale
    x = value.data if value.layout == Layout.NHWC else as_plain(value)
    dtype = x.dtype.as_numpy_dtype
    if value.layout == Layout.NHWC:
        shape = (scale.size,)
    else:
        shape = (scale.size,) + (1,) * (value.rank - 2)
    result = x * tf.constant(scale.astype(dtype).reshape(shape)) + tf.constant(shift.astype(dtype).reshape(shape))
    return [Value(result, Layout.NHWC if value.layout == Layout.NHWC else Layout.PLAIN)]


@register("LayerNormalization")
def layer_norm(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    scale = ctx.const(node, 1, what="scale")
    bias = ctx.const(node, 2, what="bias")
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise ctx.unsupported(node, "Mean/InvStdDev outputs")
    rank = value.rank
    axis = int(node.attr("axis", -1)) % rank
    epsilon = float(node.attr("epsilon", 1e-5))
    onnx_axes = list(range(axis, rank))
    normalized_shape = value.shape[axis:]
    if value.layout == Layout.NHWC and axis == 1:
        # over C, H, W: every stored axis but the batch; parameters laid out as (H, W, C)
        x, axes, layout = value.data, [1, 2, 3], Layout.NHWC

        def arrange(array):
            return np.broadcast_to(array, normalized_shape).transpose(1, 2, 0)
    else:
        x, axes, layout = as_plain(value), onnx_axes, Layout.PLAIN

        def arrange(array):
            return array

    dtype = x.dtype.as_numpy_dtype
    mean = tf.reduce_mean(x, axis=axes, keepdims=True)
    centered = x - mean
    variance = tf.reduce_mean(centered * centered, axis=axes, keepdims=True)
    result = centered * tf.math.rsqrt(variance + epsilon)
    result = result * tf.constant(np.ascontiguousarray(arrange(scale)).astype(dtype))
    if bias is not None:
        result = result + tf.constant(np.ascontiguousarray(arrange(bias)).astype(dtype))
    return [Value(result, layout)]
