"""Tiny seeded .tflite models (float32 and full-int8) built with tf.lite, and a direct-interpreter reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_SHAPE = (1, 8, 8, 3)  # NHWC, as a converted model takes it
CLASSES = 4


def _separable_function():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    depthwise = tf.constant(rng.normal(0, 0.5, (3, 3, 3, 1)).astype(np.float32))
    pointwise = tf.constant(rng.normal(0, 0.5, (1, 1, 3, 8)).astype(np.float32))
    bias = tf.constant(rng.normal(0, 0.1, (8,)).astype(np.float32))
    dense = tf.constant(rng.normal(0, 0.5, (8, CLASSES)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec(INPUT_SHAPE, tf.float32, name="input")])
    def model(x):
        y = tf.nn.depthwise_conv2d(x, depthwise, strides=[1, 1, 1, 1], padding="SAME")
        y = tf.nn.relu(tf.nn.conv2d(y, pointwise, strides=1, padding="SAME") + bias)
        y = tf.reduce_mean(y, axis=[1, 2])
        return tf.matmul(y, dense)

    return model


def build_tflite(folder: Path, *, int8: bool) -> Path:
    import tensorflow as tf

    function = _separable_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    if int8:
        rng = np.random.default_rng(1)
        calibration = [rng.standard_normal(INPUT_SHAPE).astype(np.float32) for _ in range(32)]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([c] for c in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path = folder / ("tiny_int8.tflite" if int8 else "tiny_float.tflite")
    path.write_bytes(converter.convert())
    return path


def reference_outputs(model_path: Path, inputs: np.ndarray) -> np.ndarray:
    """Outputs from the interpreter called directly (quantize/dequantize by hand)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    results = []
    for sample in inputs:
        x = sample[None]
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        results.append(y.astype(np.float32))
    return np.concatenate(results, axis=0)


def agent_processes(marker: str) -> list[int]:
    """PIDs of edgesep agents (``agent.py``) whose command line contains ``marker`` (a test's folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "agent.py" in cmdline and marker in cmdline:
                found.append(int(proc.name))
    return found
