"""Gemm and MatMul.  A flattened NHWC map (layout flat_hwc) is handled by permuting the
constant weight rows instead of transposing the activations."""

from __future__ import annotations

import numpy as np

from edgesep.convert.layout import Layout, Value, as_plain
from edgesep.convert.registry import register


def _rows_for(value: Value, weight: np.ndarray) -> np.ndarray:
    """Reorder the K rows of a (K, N) weight from C,H,W to the H,W,C feature order of ``value``."""
    if value.layout != Layout.FLAT_HWC:
        return weight
    assert value.chw is not None  # FLAT_HWC values always carry their map's (C, H, W)
    c, h, w = value.chw
    return weight.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(c * h * w, -1)


@register("Gemm")
def gemm(node, ctx):
    import tensorflow as tf

    a_value = ctx.get(node, 0)
    b_value = ctx.get(node, 1)
    c_value = ctx.get(node, 2)
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    if b_value.is_const and not trans_a:
        a = a_value.data if a_value.layout == Layout.FLAT_HWC else as_plain(a_value)
        dtype = a.dtype.as_numpy_dtype
        weight = b_value.data.T if trans_b else b_value.data
        weight = _rows_for(a_value, weight * alpha).astype(dtype)
        result = tf.matmul(a, tf.constant(np.ascontiguousarray(weight)))
    else:
        a = as_plain(a_value)
        b = as_plain(b_value)
        result = tf.matmul(a, b, transpose_a=bool(trans_a), transpose_b=bool(trans_b))
        if alpha != 1.0:
            result = result * alpha
    if c_value is not None:
        bias = c_value.data * beta if c_value.is_const else as_plain(c_value) * beta
        if c_value.is_const:
            bias = tf.constant(np.asarray(bias, dtype=result.dtype.as_numpy_dtype))
        result = tf.nn.bias_add(result, bias) if len(bias.shape) == 1 else result + bias
    return [Value(result)]


@register("MatMul")
def matmul(node, ctx):
    import tensorflow as tf

    a_value = ctx.get(node, 0)
    b_value = ctx.get(node, 1)
    if b_value.is_const and b_value.data.ndim == 2 and a_value.layout == Layout.FLAT_HWC:
        weight = _rows_for(a_value, b_value.data).astype(a_value.data.dtype.as_numpy_dtype)
        return [Value(tf.matmul(a_value.data, tf.constant(np.ascontiguousarray(weight))))]
    a = as_plain(a_value)
    b = tf.constant(b_value.data.astype(a.dtype.as_numpy_dtype)) if b_value.is_const else as_plain(b_value)
    return [Value(tf.matmul(a, b))]
