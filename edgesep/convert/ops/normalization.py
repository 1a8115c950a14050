"""BatchNormalization (inference) as a per-channel multiply-add the converter folds into the Conv."""

from __future__ import annotations

import numpy as np

from edgesep.convert.layout import NHWC, Value, as_plain
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
    x = value.data if value.layout == NHWC else as_plain(value)
    dtype = x.dtype.as_numpy_dtype
    if value.layout == NHWC:
        shape = (scale.size,)
    else:
        shape = (scale.size,) + (1,) * (value.rank - 2)
    result = x * tf.constant(scale.astype(dtype).reshape(shape)) + tf.constant(shift.astype(dtype).reshape(shape))
    return [Value(result, NHWC if value.layout == NHWC else "plain")]
