"""Layout-changing ops: Flatten, Reshape, Transpose, (Un)Squeeze, Concat, Split, Slice, Pad, Gather."""

from __future__ import annotations

import numpy as np

from edgesep.convert.layout import TO_NHWC, Layout, Value, as_nhwc, as_plain, gather_channels, nhwc_axis
from edgesep.convert.registry import register


def _flatten_nhwc(value: Value) -> Value:
    import tensorflow as tf

    n, c, h, w = value.shape
    data = tf.reshape(value.data, (n, h * w * c))
    if h == 1 and w == 1:
        return Value(data, Layout.PLAIN)
    return Value(data, Layout.FLAT_HWC, (c, h, w))


@register("Flatten")
def flatten(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    axis = int(node.attr("axis", 1)) % max(value.rank, 1)
    if value.layout == Layout.NHWC and axis == 1:
        return [_flatten_nhwc(value)]
    shape = value.shape
    outer = int(np.prod(shape[:axis])) if axis else 1
    return [Value(tf.reshape(as_plain(value), (outer, int(np.prod(shape[axis:])))))]


def _target_shape(node, ctx, value: Value) -> tuple[int, ...]:
    target = [int(d) for d in ctx.const(node, 1, what="shape").ravel()]
    source = value.shape
    if not node.attr("allowzero", 0):
        target = [source[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(source)) // max(known, 1)
    return tuple(target)


@register("Reshape")
def reshape(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    target = _target_shape(node, ctx, value)
    if value.layout == Layout.NHWC:
        n, c, h, w = value.shape
        if target == (n, c * h * w):
            return [_flatten_nhwc(value)]
        if target == (n, c, h, w):
            return [value]
        if len(target) == 5 and target[0] == n and target[3:] == (h, w) and target[1] * target[2] == c:
            # channel shuffle, step 1: view the channels as (A, B) without moving data
            return [Value(value.data, Layout.GROUPED, channels=np.arange(c).reshape(target[1], target[2]))]
    if value.layout == Layout.GROUPED:
        n, a, b, h, w = value.shape
        if target == (n, a * b, h, w):
            # channel shuffle, step 3: the regrouped channels are one constant channel gather
            return [Value(gather_channels(value.data, value.channels.ravel()), Layout.NHWC)]
        c = a * b
        if h == 1 and w == 1 and target[:2] == (n, c) and all(d == 1 for d in target[2:]):
            shuffled = gather_channels(value.data, value.channels.ravel())
            return [Value(tf.reshape(shuffled, (n, c) + (1,) * (len(target) - 2)), Layout.NHWC if len(target) == 4 else Layout.PLAIN)]
    if value.layout == Layout.FLAT_HWC and len(target) == 4 and target == (value.shape[0], *value.chw):
        return [Value(tf.reshape(value.data, (target[0], target[2], target[3], target[1])), Layout.NHWC)]
    return [Value(tf.reshape(as_plain(value), target))]


@register("Transpose")
def transpose(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    rank = value.rank
    perm = list(node.attr("perm", list(reversed(range(rank)))))
    if value.layout == Layout.GROUPED and perm in ([0, 2, 1, 3, 4], [0, 1, 2, 3, 4]):
        # channel shuffle, step 2: swap the channel-group axes in the index table only
        channels = value.channels.T if perm[1] == 2 else value.channels
        return [Value(value.data, Layout.GROUPED, channels=np.ascontiguousarray(channels))]
    if rank == 4 and value.layout == Layout.NHWC:
        order = [TO_NHWC.index(perm[TO_NHWC[i]]) for i in range(4)]
    elif rank == 4:
        order = [perm[TO_NHWC[i]] for i in range(4)]
        data = as_plain(value)
        return [Value(data if order == [0, 1, 2, 3] else tf.transpose(data, order), Layout.NHWC)]
    else:
        return [Value(tf.transpose(as_plain(value), perm))]
    data = value.data if order == [0, 1, 2, 3] else tf.transpose(value.data, order)
    return [Value(data, Layout.NHWC)]


def _axes(node, ctx, index: int) -> list[int] | None:
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > index and node.inputs[index]:
        axes = [int(a) for a in ctx.const(node, index, what="axes").ravel()]
    return None if axes is None else [int(a) for a in axes]


@register("Squeeze")
def squeeze(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    shape = value.shape
    axes = _axes(node, ctx, 1)
    axes = [i for i, d in enumerate(shape) if d == 1] if axes is None else [a % len(shape) for a in axes]
    if value.layout == Layout.NHWC:
        stored_axes = [nhwc_axis(a) for a in axes]
        remaining = [TO_NHWC[i] for i in range(4) if i not in stored_axes]
        if remaining == sorted(remaining):
            return [Value(tf.squeeze(value.data, axis=stored_axes))]
    return [Value(tf.squeeze(as_plain(value), axis=axes))]


@register("Unsqueeze")
def unsqueeze(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    axes = _axes(node, ctx, 1)
    rank = value.rank + len(axes)
    shape = list(value.shape)
    for axis in sorted(a % rank for a in axes):
        shape.insert(axis, 1)
    if value.rank == 2 and value.layout == Layout.PLAIN and rank == 4 and shape[2:] == [1, 1]:
        n, c = value.shape
        return [Value(tf.reshape(value.data, (n, 1, 1, c)), Layout.NHWC)]
    return [Value(tf.reshape(as_plain(value), shape))]


@register("Concat")
def concat(node, ctx):
    import tensorflow as tf

    values = [ctx.get(node, i) for i in range(len(node.inputs)) if node.inputs[i]]
    rank = values[0].rank
    axis = int(node.attr("axis")) % rank
    if rank == 4 and any(v.layout == Layout.NHWC for v in values):
        return [Value(tf.concat([as_nhwc(v) for v in values], axis=nhwc_axis(axis)), Layout.NHWC)]
    return [Value(tf.concat([as_plain(v) for v in values], axis=axis))]


@register("Split")
def split(node, ctx):

    value = ctx.get(node, 0)
    rank = value.rank
    axis = int(node.attr("axis", 0)) % rank
    sizes = node.attr("split")
    if sizes is None and len(node.inputs) > 1 and node.inputs[1]:
        sizes = [int(s) for s in ctx.const(node, 1, what="split").ravel()]
    if sizes is None:
        count = int(node.attr("num_outputs", len(node.outputs)))
        dim = value.shape[axis]
        chunk = -(-dim // count)
        sizes = [min(chunk, dim - i * chunk) for i in range(count)]
    if value.layout == Layout.NHWC:
        return [Value(p, Layout.NHWC) for p in _split_delegated(value.data, list(sizes), nhwc_axis(axis))]
    return [Value(p) for p in _split_delegated(as_plain(value), list(sizes), axis)]


def _split_delegated(data, sizes: list[int], axis: int):
    """Equal parts: one SPLIT; unequal parts: one STRIDED_SLICE each (XNNPACK takes both; it leaves
    SPLIT_V to TFLite's kernels, which cuts the graph into several partitions)."""
    import tensorflow as tf

    if len(set(sizes)) == 1:
        return tf.split(data, len(sizes), axis=axis)
    parts, start = [], 0
    for size in sizes:
        index = [slice(None)] * len(data.shape)
        index[axis] = slice(start, start + size)
        parts.append(data[tuple(index)])
        start += size
    return parts


@register("Slice")
def slice_(node, ctx):
    value = ctx.get(node, 0)
    shape = value.shape
    rank = len(shape)
    starts = [int(s) for s in ctx.const(node, 1, what="starts").ravel()]
    ends = [int(e) for e in ctx.const(node, 2, what="ends").ravel()]
    axes = ctx.const(node, 3, what="axes")
    steps = ctx.const(node, 4, what="steps")
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes.ravel()]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps.ravel()]
    index = [slice(None)] * rank
    for axis, start, end, step in zip(axes, starts, ends, steps):
        begin, stop, stride = slice(start, end, step).indices(shape[axis])
        if stride < 0 and stop < 0:
            stop = None
        index[axis] = slice(begin, stop, stride)
    if value.layout == Layout.NHWC:
        stored = [index[TO_NHWC[i]] for i in range(4)]
        return [Value(value.data[tuple(stored)], Layout.NHWC)]
    return [Value(as_plain(value)[tuple(index)])]


@register("Pad")
def pad(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    rank = value.rank
    mode = node.attr("mode", "constant")
    pads = node.attr("pads")
    if pads is None:
        pads = [int(p) for p in ctx.const(node, 1, what="pads").ravel()]
    fill = ctx.const(node, 2, what="constant_value")
    fill = float(node.attr("value", 0.0)) if fill is None else float(np.asarray(fill).ravel()[0]) if np.asarray(fill).size else 0.0
    axes = ctx.const(node, 3, what="axes")
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes.ravel()]
    pairs = [[0, 0] for _ in range(rank)]
    for i, axis in enumerate(axes):
        pairs[axis] = [int(pads[i]), int(pads[i + len(axes)])]
    if any(p < 0 for pair in pairs for p in pair):
        raise ctx.unsupported(node, "negative pads")
    if mode == "edge":
        if any(p > 1 for pair in pairs for p in pair):
            raise ctx.unsupported(node, "edge padding wider than 1")
        tf_mode = "SYMMETRIC"
    elif mode in ("constant", "reflect"):
        tf_mode = mode.upper()
    else:
        raise ctx.unsupported(node, f"mode={mode!r}")
    if value.layout == Layout.NHWC:
        stored = [pairs[TO_NHWC[i]] for i in range(4)]
        x, layout = value.data, Layout.NHWC
    else:
        stored, x, layout = pairs, as_plain(value), Layout.PLAIN
    if tf_mode == "CONSTANT":
        result = tf.pad(x, stored, constant_values=fill) if fill else tf.pad(x, stored)
    else:
        result = tf.pad(x, stored, mode=tf_mode)
    return [Value(result, layout)]


@register("Gather")
def gather(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    indices = ctx.const(node, 1, what="indices")
    axis = int(node.attr("axis", 0)) % value.rank
    dim = value.shape[axis]
    indices = np.where(indices < 0, indices + dim, indices).astype(np.int32)
    if value.layout == Layout.NHWC and indices.ndim == 1:
        if nhwc_axis(axis) == 3 and indices.size == dim and np.array_equal(np.sort(indices), np.arange(dim)):
            return [Value(gather_channels(value.data, indices), Layout.NHWC)]  # a channel permutation (shuffle)
        return [Value(tf.gather(value.data, indices, axis=nhwc_axis(axis)), Layout.NHWC)]
    return [Value(tf.gather(as_plain(value), indices, axis=axis))]
