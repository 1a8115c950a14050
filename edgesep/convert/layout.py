"""Per-tensor layout bookkeeping for the NHWC lowering.

A lowered tensor is a :class:`Value`: its data (a numpy constant or a TF
tensor) plus its :class:`Layout` relative to the ONNX tensor it stands for.
``PLAIN`` = same layout as ONNX; ``NHWC`` = a 4-D ONNX NCHW tensor stored
as NHWC; ``FLAT_HWC`` = a 2-D ``(N, C*H*W)`` ONNX tensor whose features are
stored in H, W, C order (a flattened NHWC map), so that a following Gemm can
permute its weights instead of transposing the activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np


class Layout(Enum):
    """How a lowered tensor's data is laid out relative to the ONNX tensor (see the module doc)."""

    PLAIN = "plain"
    NHWC = "nhwc"
    FLAT_HWC = "flat_hwc"
    GROUPED = "grouped"  # a 5-D (N, A, B, H, W) view of an NHWC map's channels (channel shuffle)


TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class Value:
    """One lowered tensor: numpy constant or TF tensor, and its layout."""

    data: Any
    layout: Layout = Layout.PLAIN
    chw: tuple[int, int, int] | None = None  # for FLAT_HWC: the (C, H, W) of the flattened map
    channels: Any = None  # for GROUPED: (A, B) int array, ONNX [n, a, b, h, w] = stored[n, h, w, channels[a, b]]

    @property
    def is_const(self) -> bool:
        return isinstance(self.data, np.ndarray)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        if self.is_const:
            return tuple(self.data.shape)
        return tuple(int(d) if d is not None else -1 for d in self.data.shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """The ONNX shape of the tensor."""
        stored = self.stored_shape
        if self.layout == Layout.GROUPED:
            return (stored[0], *self.channels.shape, stored[1], stored[2])
        if self.layout == Layout.NHWC:
            return tuple(stored[i] for i in TO_NCHW)
        return stored

    @property
    def rank(self) -> int:
        return len(self.shape)


def const(array: np.ndarray) -> Value:
    return Value(np.asarray(array))


def nhwc_axis(axis: int, rank: int = 4) -> int:
    """ONNX (NCHW) axis -> the axis of the same dimension in NHWC storage."""
    axis = axis % rank
    return TO_NHWC.index(axis)


def as_plain(value: Value):
    """The data in ONNX layout, as a TF tensor (constants become tf.constant)."""
    import tensorflow as tf

    if value.is_const:
        return tf.constant(value.data)
    if value.layout == Layout.NHWC:
        return tf.transpose(value.data, TO_NCHW)
    if value.layout == Layout.GROUPED:
        n, a, b, h, w = value.shape
        spatial = tf.reshape(gather_channels(value.data, value.channels.ravel()), (n, h, w, a, b))
        return tf.transpose(spatial, (0, 3, 4, 1, 2))
    if value.layout == Layout.FLAT_HWC:
        assert value.chw is not None  # FLAT_HWC values always carry their map's (C, H, W)
        c, h, w = value.chw
        batch = value.stored_shape[0]
        spatial = tf.reshape(value.data, (batch, h, w, c))
        return tf.reshape(tf.transpose(spatial, TO_NCHW), (batch, c * h * w))
    return value.data


def gather_channels(data, order: np.ndarray):
    """``data[..., order]`` for an NHWC tensor; no op when ``order`` is the identity.

    A channel shuffle (``order`` = the transpose of an A x B grid of channels) becomes RESHAPE + TRANSPOSE +
    RESHAPE + TRANSPOSE + RESHAPE, which XNNPACK delegates in float and int8; any other order is a GATHER,
    which XNNPACK leaves to TFLite's kernels."""
    import tensorflow as tf

    order = np.asarray(order, dtype=np.int32)
    if np.array_equal(order, np.arange(order.size)):
        return data
    grid = shuffle_grid(order)
    if grid is not None:
        n, h, w, c = (int(d) for d in data.shape)
        # (pixels, A, B) -> (B, A, pixels) -> (C, pixels) -> (pixels, C): two transposes whose innermost
        # output axis is long. The single (pixels, A, B) -> (pixels, B, A) transpose moves A-element rows
        # (2 bytes in int8) and made ShuffleNetV2's int8 1.25x slower (measured: docs/BENCHMARKS.md)
        planar = tf.transpose(tf.reshape(data, (n, h * w, *grid)), (0, 3, 2, 1))
        return tf.reshape(tf.transpose(tf.reshape(planar, (n, c, h * w)), (0, 2, 1)), (n, h, w, c))
    return tf.gather(data, order, axis=3)


def shuffle_grid(order: np.ndarray) -> tuple[int, int] | None:
    """(A, B) when ``order`` equals ``arange(A * B).reshape(A, B).T.ravel()`` (a channel shuffle), else None."""
    size = order.size
    for a in range(2, size):
        if size % a == 0 and np.array_equal(order, np.arange(size).reshape(a, size // a).T.ravel()):
            return a, size // a
    return None


def as_nhwc(value: Value):
    """A 4-D tensor in NHWC storage (transposes plain data; constants are transposed in numpy)."""
    import tensorflow as tf

    if value.layout == Layout.NHWC:
        return value.data
    if value.is_const:
        return tf.constant(np.ascontiguousarray(np.transpose(_rank4(value.data), TO_NHWC)))
    data = as_plain(value)
    if len(data.shape) != 4:
        raise ValueError(f"expected a 4-D tensor, got shape {tuple(data.shape)}")
    return tf.transpose(data, TO_NHWC)


def broadcast_nhwc(value: Value):
    """A value that broadcasts against a 4-D NCHW tensor, stored so that it broadcasts against NHWC."""
    import tensorflow as tf

    if value.layout == Layout.NHWC:
        return value.data
    if value.is_const:
        return tf.constant(np.ascontiguousarray(np.transpose(_rank4(value.data), TO_NHWC)))
    data = as_plain(value)
    rank = len(data.shape)
    if rank < 4:
        data = tf.reshape(data, (1,) * (4 - rank) + tuple(int(d) for d in data.shape))
    return tf.transpose(data, TO_NHWC)


def _rank4(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim > 4:
        raise ValueError(f"cannot broadcast a {array.ndim}-D constant against a 4-D map")
    return array.reshape((1,) * (4 - array.ndim) + array.shape)
