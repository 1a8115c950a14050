"""Conv (plain, depthwise, grouped; strides, dilations, every pad mode) and ConvTranspose, NHWC.

Each Conv becomes exactly one TFLite op that XNNPACK delegates: CONV_2D (groups included) or
DEPTHWISE_CONV_2D (any strides, dilations and channel multiplier)."""

from __future__ import annotations

import numpy as np

from edgesep.convert.layout import Layout, Value, as_nhwc
from edgesep.convert.ops.padding import choose_padding, explicit_pads, pad_nhwc
from edgesep.convert.registry import register


def _spatial_attrs(node, weight: np.ndarray):
    kernel = tuple(int(k) for k in weight.shape[2:])
    strides = tuple(node.attr("strides", [1, 1]))
    dilations = tuple(node.attr("dilations", [1, 1]))
    return kernel, strides, dilations


@register("Conv")
def conv(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    weight = ctx.const(node, 1, what="weight")
    bias = ctx.const(node, 2, what="bias")
    if value.rank != 4 or weight.ndim != 4:
        raise ctx.unsupported(node, f"only 2-D convolution (input rank {value.rank})")
    x = as_nhwc(value)
    dtype = x.dtype.as_numpy_dtype
    weight = weight.astype(dtype)
    kernel, strides, dilations = _spatial_attrs(node, weight)
    in_hw = tuple(int(d) for d in x.shape[1:3])
    channels_in = int(x.shape[3])
    groups = int(node.attr("group", 1))
    channels_out = weight.shape[0]
    pads = explicit_pads(node, in_hw, kernel, strides, dilations)
    padding, pre_pads = choose_padding(pads, in_hw, kernel, strides, dilations)
    x = pad_nhwc(x, pre_pads)
    if channels_in % groups or channels_out % groups or weight.shape[1] * groups != channels_in:
        raise ctx.unsupported(node, f"group={groups} does not divide {channels_in} -> {channels_out} channels")
    if groups > 1 and groups == channels_in:
        result = _depthwise(x, weight, strides, dilations, padding)
    else:  # plain or grouped: one CONV_2D (TFLite and XNNPACK take a filter with C_in / groups channels)
        result = _conv2d(x, weight, strides, dilations, padding)
    if bias is not None:
        result = tf.nn.bias_add(result, tf.constant(bias.astype(dtype)))
    return [Value(result, Layout.NHWC)]


def _depthwise(x, weight: np.ndarray, strides, dilations, padding: str):
    """One DEPTHWISE_CONV_2D (channel multiplier = C_out / C_in). The raw op, unlike tf.nn.depthwise_conv2d,
    keeps unequal strides and dilations as attributes (TFLite and XNNPACK take both) instead of splitting
    the convolution per group or adding SPACE_TO_BATCH_ND around it."""
    import tensorflow as tf

    multiplier = weight.shape[0] // int(x.shape[3])
    kernel = weight.shape[2:]
    filters = weight.reshape(int(x.shape[3]), multiplier, *kernel).transpose(2, 3, 0, 1)
    return tf.raw_ops.DepthwiseConv2dNative(
        input=x,
        filter=tf.constant(np.ascontiguousarray(filters)),
        strides=[1, strides[0], strides[1], 1],
        padding=padding,
        dilations=[1, dilations[0], dilations[1], 1],
    )


def _conv2d(x, weight: np.ndarray, strides, dilations, padding: str):
    import tensorflow as tf

    filters = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))
    return tf.nn.conv2d(
        x,
        tf.constant(filters),
        strides=[1, strides[0], strides[1], 1],
        padding=padding,
        dilations=[1, dilations[0], dilations[1], 1],
    )


@register("ConvTranspose")
def conv_transpose(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    weight = ctx.const(node, 1, what="weight")
    bias = ctx.const(node, 2, what="bias")
    if value.rank != 4 or weight.ndim != 4:
        raise ctx.unsupported(node, "only 2-D transposed convolution")
    x = as_nhwc(value)
    dtype = x.dtype.as_numpy_dtype
    weight = weight.astype(dtype)
    kernel, strides, dilations = _spatial_attrs(node, weight)
    if any(d != 1 for d in dilations):
        raise ctx.unsupported(node, f"dilations={list(dilations)} (only 1)")
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "", "VALID") or node.attr("output_shape") is not None:
        raise ctx.unsupported(node, "auto_pad SAME_* / output_shape (give explicit pads)")
    groups = int(node.attr("group", 1))
    pads = list(node.attr("pads", [0, 0, 0, 0])) if auto_pad != "VALID" else [0, 0, 0, 0]
    output_padding = list(node.attr("output_padding", [0, 0]))
    batch, height, width, channels_in = (int(d) for d in x.shape)
    full = [strides[i] * ((height, width)[i] - 1) + kernel[i] + output_padding[i] for i in range(2)]
    parts = tf.split(x, groups, axis=3) if groups > 1 else [x]
    kernels = np.split(weight, groups, axis=0) if groups > 1 else [weight]
    outputs = []
    for part, kern in zip(parts, kernels):
        filters = np.ascontiguousarray(kern.transpose(2, 3, 1, 0))  # (kh, kw, out, in)
        outputs.append(
            tf.nn.conv2d_transpose(
                part,
                tf.constant(filters),
                output_shape=[batch, full[0], full[1], filters.shape[2]],
                strides=[1, strides[0], strides[1], 1],
                padding="VALID",
            )
        )
    result = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=3)
    if any(pads):
        result = result[:, pads[0] : full[0] - pads[2], pads[1] : full[1] - pads[3], :]
    if bias is not None:
        result = tf.nn.bias_add(result, tf.constant(bias.astype(dtype)))
    return [Value(result, Layout.NHWC)]
