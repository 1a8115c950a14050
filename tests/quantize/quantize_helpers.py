"""Helpers of the quantizer tests (a uniquely named module: every test folder has its own conftest.py)."""

from __future__ import annotations

import numpy as np


def conv_depthwise_dense(*, channels_in: int, channels: int, stride: int, weight_scale: float, dense_scale: float,
                         depthwise_relu6: bool) -> bytes:  # fmt: skip
    """A float .tflite on 8x8 inputs: conv 3x3 (+bias, relu) -> depthwise 3x3 (+bias, relu6 if asked) -> reshape ->
    dense (+bias) to 10 outputs; seeded weights (the int8-model tests measure their numbers on these)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    side = 8 // stride
    conv = tf.constant(rng.standard_normal((3, 3, channels_in, channels)).astype(np.float32) * weight_scale)
    conv_bias = tf.constant(rng.standard_normal(channels).astype(np.float32) * 0.1)
    depthwise = tf.constant(rng.standard_normal((3, 3, channels, 1)).astype(np.float32) * weight_scale)
    depthwise_bias = tf.constant(rng.standard_normal(channels).astype(np.float32) * 0.1)
    dense = tf.constant(rng.standard_normal((side * side * channels, 10)).astype(np.float32) * dense_scale)
    dense_bias = tf.constant(rng.standard_normal(10).astype(np.float32) * 0.1)

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, channels_in], tf.float32)])
    def net(x):
        y = tf.nn.relu(tf.nn.conv2d(x, conv, 1, "SAME") + conv_bias)
        y = tf.nn.depthwise_conv2d(y, depthwise, [1, stride, stride, 1], "SAME") + depthwise_bias
        y = tf.nn.relu6(y) if depthwise_relu6 else y
        return tf.matmul(tf.reshape(y, [1, -1]), dense) + dense_bias

    return tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net).convert()
