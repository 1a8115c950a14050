"""The mission's Keras example: a one-block depthwise-separable classifier for 32x32 RGB images.

Input 32x32x3 -> DepthwiseConv2D 3x3 + ReLU -> Conv2D 64 1x1 + ReLU -> BatchNorm -> MaxPool
-> Flatten -> Dense 10 softmax.  Keras (TensorFlow) is imported when the function is called.
"""

from __future__ import annotations


def build_keras_example(*, input_size: int = 32, channels: int = 3, num_classes: int = 10, seed: int = 0):
    """The example as a ``keras.Model`` with seeded random weights and non-trivial BN statistics."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, channels), name="image")
    x = keras.layers.DepthwiseConv2D(3, activation="relu", name="depthwise")(inputs)
    x = keras.layers.Conv2D(64, 1, activation="relu", name="pointwise")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name="keras_sepcnn_example")
    rng = np.random.default_rng(seed)
    bn = model.get_layer("bn")
    gamma, beta, mean, var = (w.shape for w in bn.get_weights())
    bn.set_weights([
        rng.uniform(0.5, 1.5, gamma).astype("float32"), rng.normal(0, 0.1, beta).astype("float32"),
        rng.normal(0, 0.1, mean).astype("float32"), rng.uniform(0.5, 1.5, var).astype("float32"),
    ])  # fmt: skip
    return model
