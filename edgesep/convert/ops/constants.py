"""Constant, Identity-like ops, and shape ops that are only supported when constant-foldable."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgesep.convert.layout import Value
from edgesep.convert.registry import register


@register("Constant")
def constant(node, ctx):
    from onnx import numpy_helper

    if "value" in node.attrs:
        return [Value(numpy_helper.to_array(node.attrs["value"]))]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64), ("value_ints", np.int64)):
        if key in node.attrs:
            return [Value(np.asarray(node.attrs[key], dtype=dtype))]
    raise ctx.unsupported(node, "only tensor/float/int values")


@register("Identity", "Dropout")
def identity(node, ctx):
    value = ctx.get(node, 0)
    return [value]


@register("Shape")
def shape(node, ctx):
    dims = np.asarray(ctx.get(node, 0).shape, dtype=np.int64)
    start = node.attr("start", 0)
    end = node.attr("end", None)
    return [Value(dims[start:end])]


@register("Size")
def size(node, ctx):
    return [Value(np.asarray(int(np.prod(ctx.get(node, 0).shape)), dtype=np.int64))]


@register("Cast")
def cast(node, ctx):
    import tensorflow as tf
    from onnx import helper

    value = ctx.get(node, 0)
    dtype = tf.as_dtype(helper.tensor_dtype_to_np_dtype(int(node.attr("to"))))
    return [replace(value, data=tf.cast(value.data, dtype))]


_FOLD_ONLY = ("ConstantOfShape", "Range", "Equal", "Where", "Expand", "Tile", "NonZero", "Less", "Greater", "Not")


@register(*_FOLD_ONLY)
def fold_only(node, ctx):
    raise ctx.unsupported(node, "supported only when its inputs are constants (constant-folded)")
