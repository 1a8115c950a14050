"""Spatial padding arithmetic shared by Conv, ConvTranspose and the pools (pure numpy/python)."""

from __future__ import annotations

import math


def explicit_pads(node, in_hw: tuple[int, int], kernel: tuple[int, int], strides, dilations) -> list[int]:
    """ONNX pads [top, left, bottom, right] after resolving ``auto_pad``."""
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = list(node.attr("pads", [0, 0, 0, 0]))
        return pads if pads else [0, 0, 0, 0]
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        total = same_total(size, k, s, d)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return [begins[0], begins[1], ends[0], ends[1]]


def same_total(size: int, kernel: int, stride: int, dilation: int) -> int:
    effective = (kernel - 1) * dilation + 1
    return max((math.ceil(size / stride) - 1) * stride + effective - size, 0)


def tf_same_pads(in_hw, kernel, strides, dilations) -> list[int]:
    """The pads TensorFlow's ``padding="SAME"`` applies, in ONNX order."""
    totals = [same_total(n, k, s, d) for n, k, s, d in zip(in_hw, kernel, strides, dilations)]
    return [totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2]


def trim_unused(pads: list[int], in_hw, kernel, strides, dilations) -> list[int]:
    """Drop trailing pad rows/columns no window reaches (same output, maybe a SAME match)."""
    pads = list(pads)
    for axis in range(2):
        effective = (kernel[axis] - 1) * dilations[axis] + 1
        span = in_hw[axis] + pads[axis] + pads[axis + 2] - effective
        if span < 0:
            continue
        unused = span % strides[axis]
        pads[axis + 2] -= min(unused, pads[axis + 2])
    return pads


def choose_padding(pads, in_hw, kernel, strides, dilations) -> tuple[str, list[int]]:
    """("VALID", [0]*4), ("SAME", [0]*4) or ("VALID", explicit pads to apply first)."""
    if not any(pads):
        return "VALID", [0, 0, 0, 0]
    if list(pads) == tf_same_pads(in_hw, kernel, strides, dilations):
        return "SAME", [0, 0, 0, 0]
    trimmed = trim_unused(pads, in_hw, kernel, strides, dilations)
    if trimmed == tf_same_pads(in_hw, kernel, strides, dilations):
        return "SAME", [0, 0, 0, 0]
    if not any(trimmed):
        return "VALID", [0, 0, 0, 0]
    return "VALID", trimmed


def pad_nhwc(x, pads: list[int], value: float = 0.0):
    """tf.pad of an NHWC tensor with ONNX-order pads [top, left, bottom, right]."""
    import tensorflow as tf

    if not any(pads):
        return x
    spec = [[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]]
    if value == 0.0:
        return tf.pad(x, spec)
    return tf.pad(x, spec, constant_values=value)
