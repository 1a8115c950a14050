"""Resize/Upsample of NHWC maps: bilinear via RESIZE_BILINEAR flags; nearest by an integer factor as
RESHAPE + CONCATENATION (XNNPACK leaves RESIZE_NEAREST_NEIGHBOR to TFLite's kernels, which splits the graph),
else RESIZE_NEAREST_NEIGHBOR when its index map equals ONNX's, else an exact constant-index gather."""

from __future__ import annotations

import math

import numpy as np

from edgesep.convert.layout import Layout, Value, as_nhwc
from edgesep.convert.registry import register


def _output_hw(node, ctx, shape) -> tuple[tuple[int, int], tuple[float, float]]:
    if node.op_type == "Upsample":
        scales = node.attr("scales")
        scales = ctx.const(node, 1, what="scales") if scales is None else np.asarray(scales)
        sizes = None
    else:
        scales = ctx.const(node, 2, what="scales") if len(node.inputs) > 2 and node.inputs[2] else None
        sizes = ctx.const(node, 3, what="sizes") if len(node.inputs) > 3 and node.inputs[3] else None
        if node.attr("axes") is not None:
            raise ctx.unsupported(node, "the axes attribute")
    if sizes is not None and sizes.size:
        sizes = [int(s) for s in sizes.ravel()]
        if sizes[:2] != list(shape[:2]):
            raise ctx.unsupported(node, "resizing the batch or channel axis")
        out = (sizes[2], sizes[3])
        return out, (out[0] / shape[2], out[1] / shape[3])
    scales = [float(s) for s in np.asarray(scales).ravel()]
    if scales[:2] != [1.0, 1.0]:
        raise ctx.unsupported(node, "resizing the batch or channel axis")
    out = (int(math.floor(shape[2] * scales[2])), int(math.floor(shape[3] * scales[3])))
    return out, (scales[2], scales[3])


def _onnx_source(out_size: int, in_size: int, scale: float, mode: str) -> np.ndarray:
    x = np.arange(out_size, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    raise ValueError(mode)


def _onnx_nearest(out_size, in_size, scale, mode, rounding) -> np.ndarray:
    source = _onnx_source(out_size, in_size, scale, mode)
    if rounding == "floor":
        index = np.floor(source)
    elif rounding == "ceil":
        index = np.ceil(source)
    elif rounding == "round_prefer_ceil":
        index = np.floor(source + 0.5)
    else:  # round_prefer_floor
        index = np.ceil(source - 0.5)
    return np.clip(index, 0, in_size - 1).astype(np.int64)


def _tf_nearest(out_size, in_size, *, align_corners: bool, half_pixel: bool) -> np.ndarray:
    x = np.arange(out_size, dtype=np.float64)
    scale = (in_size - 1) / (out_size - 1) if align_corners and out_size > 1 else in_size / out_size
    source = (x + 0.5) * scale if half_pixel else x * scale
    index = np.round(source) if align_corners else np.floor(source)
    return np.clip(index, 0, in_size - 1).astype(np.int64)


@register("Resize", "Upsample")
def resize(node, ctx):
    import tensorflow as tf

    value = ctx.get(node, 0)
    if value.rank != 4:
        raise ctx.unsupported(node, "only 4-D inputs")
    shape = value.shape
    (out_h, out_w), scales = _output_hw(node, ctx, shape)
    x = as_nhwc(value)
    mode = node.attr("mode", "nearest")
    coordinates = node.attr("coordinate_transformation_mode", "half_pixel" if node.op_type == "Resize" else "asymmetric")
    if node.attr("antialias", 0) and (out_h < shape[2] or out_w < shape[3]):
        raise ctx.unsupported(node, "antialias when downsampling")
    if mode in ("linear", "bilinear"):
        if coordinates == "pytorch_half_pixel" and min(out_h, out_w) > 1:
            coordinates = "half_pixel"
        flags = {"half_pixel": (False, True), "align_corners": (True, False), "asymmetric": (False, False)}
        if coordinates not in flags:
            raise ctx.unsupported(node, f"linear with coordinate_transformation_mode={coordinates!r}")
        if coordinates != "align_corners" and not _scales_match(scales, shape, (out_h, out_w)):
            raise ctx.unsupported(node, "linear resize with scales that do not equal output/input sizes")
        align, half = flags[coordinates]
        result = tf.compat.v1.image.resize_bilinear(x, (out_h, out_w), align_corners=align, half_pixel_centers=half)
        return [Value(result, Layout.NHWC)]
    if mode != "nearest":
        raise ctx.unsupported(node, f"mode={mode!r} (nearest and linear only)")
    rounding = node.attr("nearest_mode", "round_prefer_floor")
    try:
        rows = _onnx_nearest(out_h, shape[2], scales[0], coordinates, rounding)
        cols = _onnx_nearest(out_w, shape[3], scales[1], coordinates, rounding)
    except ValueError:
        raise ctx.unsupported(node, f"coordinate_transformation_mode={coordinates!r}") from None
    factors = _repeat_factor(rows, shape[2]), _repeat_factor(cols, shape[3])
    if all(factors):
        return [Value(_repeat_nhwc(x, *factors), Layout.NHWC)]
    for align, half in ((False, False), (False, True), (True, False)):
        if np.array_equal(rows, _tf_nearest(out_h, shape[2], align_corners=align, half_pixel=half)) and np.array_equal(
            cols, _tf_nearest(out_w, shape[3], align_corners=align, half_pixel=half)
        ):
            result = tf.compat.v1.image.resize_nearest_neighbor(x, (out_h, out_w), align_corners=align, half_pixel_centers=half)
            return [Value(result, Layout.NHWC)]
    result = tf.gather(tf.gather(x, rows.astype(np.int32), axis=1), cols.astype(np.int32), axis=2)
    return [Value(result, Layout.NHWC)]


def _repeat_factor(index: np.ndarray, in_size: int) -> int:
    """k when ``index`` repeats every source row k times in order (nearest upsampling by k), else 0."""
    if index.size % in_size:
        return 0
    factor = index.size // in_size
    return factor if np.array_equal(index, np.repeat(np.arange(in_size), factor)) else 0


def _repeat_nhwc(x, factor_h: int, factor_w: int):
    """Nearest upsampling by integer factors with ops XNNPACK delegates in float and int8 (exact copies)."""
    import tensorflow as tf

    for factor in _small_factors(factor_w):
        n, h, w, c = (int(d) for d in x.shape)
        x = tf.reshape(tf.concat([tf.reshape(x, (n, h, w, 1, c))] * factor, axis=3), (n, h, w * factor, c))
    for factor in _small_factors(factor_h):
        n, h, w, c = (int(d) for d in x.shape)
        x = tf.reshape(tf.concat([tf.reshape(x, (n, h, 1, w, c))] * factor, axis=2), (n, h * factor, w, c))
    return x


def _small_factors(factor: int) -> list[int]:
    """``factor`` as a product of steps of at most 4 (XNNPACK concatenates at most 4-5 inputs in one op):
    8 -> [4, 2]; a prime above 4 stays one step."""
    steps = []
    while factor > 1:
        step = next((d for d in (4, 3, 2) if factor % d == 0), factor)
        steps.append(step)
        factor //= step
    return steps


def _scales_match(scales, shape, out_hw) -> bool:
    return all(abs(s - o / i) < 1e-6 for s, o, i in zip(scales, out_hw, shape[2:]))
