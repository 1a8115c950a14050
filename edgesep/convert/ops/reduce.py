"""Reduce* ops with axes remapped onto NHWC storage."""

from __future__ import annotations

from edgesep.convert.layout import TO_NHWC, Layout, Value, as_plain, nhwc_axis
from edgesep.convert.registry import register

_FUNCTIONS = {
    "ReduceMean": "reduce_mean",
    "ReduceMax": "reduce_max",
    "ReduceMin": "reduce_min",
    "ReduceSum": "reduce_sum",
    "ReduceProd": "reduce_prod",
}


@register(*_FUNCTIONS)
def reduce(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    rank = value.rank
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(a) for a in ctx.const(node, 1, what="axes").ravel()]
    keepdims = bool(node.attr("keepdims", 1))
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [value]
        axes = list(range(rank))
    axes = sorted(int(a) % rank for a in axes)
    function = getattr(tf, _FUNCTIONS[node.op_type])
    if value.layout == Layout.NHWC:
        stored_axes = [nhwc_axis(a) for a in axes]
        result = function(value.data, axis=stored_axes, keepdims=keepdims)
        if keepdims:
            return [Value(result, Layout.NHWC)]
        remaining = [TO_NHWC[i] for i in range(4) if i not in stored_axes]
        if remaining == sorted(remaining):
            return [Value(result, Layout.PLAIN)]
        order = [remaining.index(a) for a in sorted(remaining)]
        return [Value(tf.transpose(result, order), Layout.PLAIN)]
    return [Value(function(as_plain(value), axis=axes, keepdims=keepdims), Layout.PLAIN)]
