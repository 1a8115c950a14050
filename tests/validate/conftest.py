"""Shared fixtures for the validate tests: RunResults-shaped objects built by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass
class FakeRun:
    """Has the fields of edgesep.results.RunResults that a comparison reads."""

    tag: str
    model_name: str
    model_bytes: int
    latencies_ms: np.ndarray
    outputs: np.ndarray | None
    warmup: int = 5
    threads: int | None = 2
    device: dict = field(default_factory=lambda: {"cpu": "TestCPU", "cores": 2, "machine": "x86_64"})
    emulated: bool = False
    complete: bool = True
    error: str | None = None


@pytest.fixture
def fake_run():
    return FakeRun


def _build_digits_models(folder):
    """A ridge-regression linear digits classifier as float32 and full-int8 .tflite (NHWC input 1x16x16x1)."""
    import tensorflow as tf

    from edgesep.data.digits import load_digits_split

    split = load_digits_split()
    features = split.x_train.reshape(len(split.x_train), -1).astype(np.float64)
    design = np.hstack([features, np.ones((len(features), 1))])
    solution = np.linalg.solve(design.T @ design + np.eye(design.shape[1]), design.T @ np.eye(10)[split.y_train])
    weights = tf.constant(solution[:-1].astype(np.float32))
    bias = tf.constant(solution[-1].astype(np.float32))

    class Linear(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 1], tf.float32, name="input")])
        def __call__(self, x):
            return {"logits": tf.matmul(tf.reshape(x, [1, 256]), weights) + bias}

    module = Linear()
    function = module.__call__.get_concrete_function()
    float_path, quant_path = folder / "linear.tflite", folder / "linear_int8.tflite"
    float_path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([function], module).convert())

    def representative():
        for i in range(100):
            yield [split.x_train[i : i + 1].transpose(0, 2, 3, 1)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    quant_path.write_bytes(converter.convert())
    test = split.x_test.reshape(len(split.x_test), -1)
    float_accuracy = float(np.mean((test @ solution[:-1] + solution[-1]).argmax(axis=1) == split.y_test))
    return float_path, quant_path, float_accuracy


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory):
    """(float .tflite, int8 .tflite, float64 reference top-1 on the digits test split); no sidecars."""
    return _build_digits_models(tmp_path_factory.mktemp("digits-models"))
