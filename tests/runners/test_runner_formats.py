"""Torch, onnxruntime and TFLite runners on the same seeded MLP agree; timing is recorded per inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesep.errors import InputError, ShapeError
from edgesep.runners import OnnxRunner, TfliteRunner, TorchRunner

rng = np.random.default_rng(3)
W1 = rng.normal(0, 0.5, (6, 16)).astype(np.float32)
B1 = rng.normal(0, 0.1, (16,)).astype(np.float32)
W2 = rng.normal(0, 0.5, (16, 5)).astype(np.float32)
INPUTS = np.random.default_rng(4).standard_normal((8, 6)).astype(np.float32)
EXPECTED = np.maximum(INPUTS.astype(np.float64) @ W1 + B1, 0) @ W2


def _torch_mlp():
    import torch

    layer1 = torch.nn.Linear(6, 16)
    layer2 = torch.nn.Linear(16, 5, bias=False)
    with torch.no_grad():
        layer1.weight.copy_(torch.from_numpy(W1.T.copy()))
        layer1.bias.copy_(torch.from_numpy(B1))
        layer2.weight.copy_(torch.from_numpy(W2.T.copy()))
    return torch.nn.Sequential(layer1, torch.nn.ReLU(), layer2)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    import tensorflow as tf
    import torch

    folder = tmp_path_factory.mktemp("runner-models")
    onnx_path = folder / "mlp.onnx"
    torch.onnx.export(
        _torch_mlp(), (torch.zeros(1, 6),), str(onnx_path), input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
    )  # fmt: skip

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="input")])
    def mlp(x):
        return tf.matmul(tf.nn.relu(tf.matmul(x, W1) + B1), W2)

    paths = {"onnx": onnx_path}
    for kind in ("float", "int8"):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([mlp.get_concrete_function()], mlp)
        if kind == "int8":
            calibration = np.random.default_rng(5).standard_normal((64, 1, 6)).astype(np.float32)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda data=calibration: ([c] for c in data)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        paths[kind] = folder / f"mlp_{kind}.tflite"
        paths[kind].write_bytes(converter.convert())
    return paths


def test_three_runners_agree(model_files):
    with TorchRunner(_torch_mlp()) as torch_runner:
        torch_out = torch_runner.infer(INPUTS)["output_0"]
    with OnnxRunner(model_files["onnx"], threads=1) as onnx_runner:
        onnx_out = onnx_runner.infer({"input": INPUTS})["logits"]
        assert onnx_runner.output_names == ["logits"]
    with TfliteRunner(model_files["float"], threads=1) as tflite_runner:
        tflite_out = next(iter(tflite_runner.infer(INPUTS).values()))  # dynamic batch resized to 8
        assert tflite_runner.runtime["name"] == "ai_edge_litert"
    for out in (torch_out, onnx_out, tflite_out):
        assert out.shape == (8, 5)
        assert float(np.max(np.abs(out - EXPECTED))) < 1e-5


def test_tflite_int8_quantizes_inputs_and_dequantizes_outputs(model_files):
    with TfliteRunner(model_files["int8"], use_xnnpack=False) as runner:
        detail = runner.input_details()[0]
        assert detail["dtype"] == np.int8
        out = np.concatenate([next(iter(runner.infer(x[None]).values())) for x in INPUTS])
    assert out.dtype == np.float32
    scale = float(np.max(np.abs(EXPECTED)))
    assert float(np.max(np.abs(out - EXPECTED))) < 0.05 * scale
    assert float(np.mean(out.argmax(1) == EXPECTED.argmax(1))) >= 7 / 8
    with TfliteRunner(model_files["int8"], raw=True) as raw_runner:
        assert next(iter(raw_runner.infer(INPUTS[:1]).values())).dtype == np.int8


def test_timing_and_lifecycle(model_files):
    runner = OnnxRunner(model_files["onnx"])
    with pytest.raises(RuntimeError, match="not active"):
        runner.infer(INPUTS)
    with runner:
        for _ in range(3):
            runner.infer(INPUTS[:2])
        assert len(runner.inference_times_ms) == 3 and runner.last_inference_ms > 0
        with pytest.raises(ShapeError, match=r"has shape \[2, 7\], model expects \[None, 6\]"):
            runner.infer(np.zeros((2, 7), np.float32))
        with pytest.raises(InputError, match="feed lacks inputs"):
            runner.infer({"x": INPUTS})
    assert not runner.is_active


def test_tflite_shape_error(model_files):
    with TfliteRunner(model_files["float"]) as runner, pytest.raises(ShapeError, match="model expects"):
        runner.infer(np.zeros((1, 4), np.float32))
