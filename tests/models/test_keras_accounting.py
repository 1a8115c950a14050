"""Keras parameter/MAC accounting with the separable savings, like for PyTorch."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def example():
    from edgesep.models.keras_example import build_keras_example

    return build_keras_example(seed=0)


def test_keras_example_counts(example):
    from edgesep.models.keras_accounting import count_keras

    acc = count_keras(example)
    assert acc.format == "keras" and acc.input_shape == (1, 3, 32, 32)
    rows = {layer.name: layer for layer in acc.layers}
    assert rows["depthwise"].params == 27 + 3 and rows["depthwise"].macs == 30 * 30 * 3 * 9
    assert rows["pointwise"].params == 3 * 64 + 64 and rows["pointwise"].macs == 30 * 30 * 64 * 3
    assert rows["bn"].params == 128  # gamma + beta; moving stats are buffers
    assert rows["classifier"].params == 15 * 15 * 64 * 10 + 10 and rows["classifier"].macs == 144000
    assert acc.total_params == 144424 == example.count_params() - 128
    assert acc.total_macs == 24300 + 172800 + 144000
    (pair,) = acc.pairs
    assert (pair.depthwise, pair.pointwise, pair.in_channels, pair.out_channels) == ("depthwise", "pointwise", 3, 64)
    assert pair.params == 9 * 3 + 3 * 64 and pair.standard_params == 9 * 3 * 64
    assert pair.ratio == pytest.approx(1 / 64 + 1 / 9)


def test_separable_conv2d_is_split_into_a_pair():
    import keras

    from edgesep.models.keras_accounting import count_keras

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.SeparableConv2D(16, 3, padding="same", name="sep")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    acc = count_keras(model)
    assert acc.total_params == model.count_params() == 9 * 4 + 4 * 16 + 16
    (pair,) = acc.pairs
    assert pair.macs == (9 * 4 + 4 * 16) * 64
    assert pair.saving == pytest.approx((9 * 4 * 16) / (9 * 4 + 4 * 16))
