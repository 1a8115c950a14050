"""Global and windowed pooling in NHWC (ceil_mode, count_include_pad, asymmetric pads)."""

from __future__ import annotations

import math

import numpy as np

from edgesep.convert.layout import Layout, Value, as_nhwc
from edgesep.convert.ops.padding import choose_padding, explicit_pads, pad_nhwc, tf_same_pads
from edgesep.convert.registry import register


@register("GlobalAveragePool", "GlobalMaxPool")
def global_pool(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    if value.rank != 4:
        raise ctx.unsupported(node, f"only 4-D inputs (rank {value.rank})")
    x = as_nhwc(value)
    reduce = tf.reduce_mean if node.op_type == "GlobalAveragePool" else tf.reduce_max
    return [Value(reduce(x, axis=[1, 2], keepdims=True), Layout.NHWC)]


def _window(node, ctx, x):
    kernel = tuple(int(k) for k in node.attr("kernel_shape"))
    if len(kernel) != 2:
        raise ctx.unsupported(node, "only 2-D pooling")
    strides = tuple(node.attr("strides", [1, 1]))
    dilations = tuple(node.attr("dilations", [1, 1]))
    if any(d != 1 for d in dilations):
        raise ctx.unsupported(node, f"dilations={list(dilations)} (only 1)")
    in_hw = tuple(int(d) for d in x.shape[1:3])
    pads = explicit_pads(node, in_hw, kernel, strides, dilations)
    ceil_extra = [0, 0]
    if node.attr("ceil_mode", 0):
        for axis in range(2):
            padded = in_hw[axis] + pads[axis] + pads[axis + 2]
            out = math.ceil((padded - kernel[axis]) / strides[axis]) + 1
            if (out - 1) * strides[axis] >= in_hw[axis] + pads[axis]:
                out -= 1
            ceil_extra[axis] = max((out - 1) * strides[axis] + kernel[axis] - padded, 0)
    return kernel, strides, in_hw, pads, ceil_extra


@register("MaxPool")
def max_pool(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    if value.rank != 4 or len(node.outputs) > 1 and node.outputs[1]:
        raise ctx.unsupported(node, "only 4-D inputs and no Indices output")
    x = as_nhwc(value)
    kernel, strides, in_hw, pads, extra = _window(node, ctx, x)
    total = [pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1]]
    padding, pre_pads = choose_padding(total, in_hw, kernel, strides, (1, 1))
    x = _pad_replicate(x, pre_pads)
    result = tf.nn.max_pool2d(x, ksize=list(kernel), strides=list(strides), padding=padding)
    return [Value(result, Layout.NHWC)]


def _pad_replicate(x, pads: list[int]):
    """Edge-replicate padding [top, left, bottom, right] as STRIDED_SLICE + CONCATENATION.

    Every max-pool window holds at least one real element and a replicated edge
    value is a copy of the element it borders, so the maximum is unchanged; unlike
    padding with -FLT_MAX this keeps the tensor's range fit for int8 calibration. Slices and
    concatenations are exact and XNNPACK delegates them (it leaves MIRROR_PAD to TFLite's kernels).
    """
    import tensorflow as tf

    top, left, bottom, right = pads
    if top or bottom:
        x = tf.concat([x[:, :1]] * top + [x] + [x[:, -1:]] * bottom, axis=1)
    if left or right:
        x = tf.concat([x[:, :, :1]] * left + [x] + [x[:, :, -1:]] * right, axis=2)
    return x


@register("AveragePool")
def average_pool(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    if value.rank != 4:
        raise ctx.unsupported(node, "only 4-D inputs")
    x = as_nhwc(value)
    kernel, strides, in_hw, pads, extra = _window(node, ctx, x)
    include_pad = bool(node.attr("count_include_pad", 0))
    total = [pads[0], pads[1], pads[2] + extra[0], pads[3] + extra[1]]
    window_mean = _window_mean_integer if ctx.integer else _window_mean
    if not any(total):
        return [Value(window_mean(x, kernel, strides), Layout.NHWC)]
    if not include_pad and total == tf_same_pads(in_hw, kernel, strides, (1, 1)) and not ctx.integer:
        return [Value(tf.nn.avg_pool2d(x, list(kernel), list(strides), "SAME"), Layout.NHWC)]
    # general case: sum over the zero-padded window divided by the ONNX divisor per output position
    counted = np.zeros((in_hw[0] + sum(total[0::2]), in_hw[1] + sum(total[1::2])), dtype=np.float64)
    if include_pad:
        counted[: in_hw[0] + pads[0] + pads[2], : in_hw[1] + pads[1] + pads[3]] = 1.0
    else:
        counted[pads[0] : pads[0] + in_hw[0], pads[1] : pads[1] + in_hw[1]] = 1.0
    out_hw = [(counted.shape[a] - kernel[a]) // strides[a] + 1 for a in range(2)]
    divisor = np.empty(out_hw, dtype=np.float64)
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            window = counted[i * strides[0] : i * strides[0] + kernel[0], j * strides[1] : j * strides[1] + kernel[1]]
            divisor[i, j] = max(window.sum(), 1.0)
    dtype = x.dtype.as_numpy_dtype
    factor = (kernel[0] * kernel[1] / divisor).astype(dtype).reshape(1, out_hw[0], out_hw[1], 1)
    pooled = window_mean(pad_nhwc(x, total), kernel, strides)
    if np.allclose(factor, 1.0):
        return [Value(pooled, Layout.NHWC)]
    return [Value(pooled * tf.constant(factor), Layout.NHWC)]


def _window_mean(x, kernel, strides):
    """The mean over each unpadded window: AVERAGE_POOL_2D."""
    import tensorflow as tf

    return tf.nn.avg_pool2d(x, list(kernel), list(strides), "VALID")


def _window_mean_integer(x, kernel, strides):
    """For int8: the window mean as a DEPTHWISE_CONV_2D with every weight 1 / (kh * kw) and a zero bias.

    XNNPACK has no int8 AVERAGE_POOL_2D (TFLite's reference kernel ran it, splitting the partition); it runs
    int8 DEPTHWISE_CONV_2D, and a constant weight quantizes exactly per channel (127 at scale w / 127)."""
    import tensorflow as tf

    channels = int(x.shape[3])
    dtype = x.dtype.as_numpy_dtype
    weight = np.full((kernel[0], kernel[1], channels, 1), 1.0 / (kernel[0] * kernel[1]), dtype)
    y = tf.raw_ops.DepthwiseConv2dNative(input=x, filter=tf.constant(weight), strides=[1, strides[0], strides[1], 1], padding="VALID")
    return tf.nn.bias_add(y, tf.constant(np.zeros(channels, dtype)))
