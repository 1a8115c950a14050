"""int8 models that XNNPACK runs as one partition.

Float islands: in an int8 model, the ops XNNPACK has no int8 kernel for (BATCH_MATMUL of two activations,
SOFTMAX, RSQRT, an ADD of a tiny constant) are kept in float between a DEQUANTIZE and a QUANTIZE, so the graph
stays one XNNPACK partition; an AveragePool is an int8 DEPTHWISE_CONV_2D. On a small attention block shaped
like PP-OCRv5 rec's (pool, LayerNorm, single-head attention, residual). And PRelu + a ShuffleNet channel
shuffle, lowered in forms XNNPACK runs in int8 (MTCNN, ShuffleNetV2)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

TOKENS, WIDTH = 8, 16  # channels = attention width


def _attention_block():
    rng = np.random.default_rng(0)

    def weight(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = {
        "w": weight(WIDTH, 4, 1, 1), "b": weight(WIDTH), "shape": np.array([1, WIDTH, TOKENS], np.int64),
        "two": np.array(2.0, np.float32), "eps": np.array(1e-5, np.float32),
        "gamma": 1 + weight(WIDTH, scale=0.1), "beta": weight(WIDTH, scale=0.1),
        "wq": weight(WIDTH, WIDTH), "wk": weight(WIDTH, WIDTH), "wv": weight(WIDTH, WIDTH),
    }  # fmt: skip
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"]),
        node("AveragePool", ["c"], ["p"], kernel_shape=[3, 2], strides=[3, 2]),  # (1, W, 1, T) as in PP-OCRv5 rec
        node("Reshape", ["p", "shape"], ["r"]),
        node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),  # (1, T, W)
        node("ReduceMean", ["t"], ["mean"], axes=[-1]),
        node("Sub", ["t", "mean"], ["d"]),
        node("Pow", ["d", "two"], ["d2"]),
        node("ReduceMean", ["d2"], ["var"], axes=[-1]),
        node("Add", ["var", "eps"], ["ve"]),
        node("Sqrt", ["ve"], ["std"]),
        node("Div", ["d", "std"], ["n"]),
        node("Mul", ["n", "gamma"], ["g"]),
        node("Add", ["g", "beta"], ["ln"]),
        node("MatMul", ["ln", "wq"], ["q"]),
        node("MatMul", ["ln", "wk"], ["k"]),
        node("MatMul", ["ln", "wv"], ["v"]),
        node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        node("MatMul", ["q", "kt"], ["scores"]),
        node("Softmax", ["scores"], ["attention"], axis=-1),
        node("MatMul", ["attention", "v"], ["o"]),
        node("Add", ["o", "t"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 2 * TOKENS])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, TOKENS, WIDTH])],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    import onnx

    folder = tmp_path_factory.mktemp("islands")
    onnx.save(_attention_block(), folder / "attention.onnx")
    rng = np.random.default_rng(1)
    np.save(folder / "calibration.npy", rng.standard_normal((24, 4, 3, 2 * TOKENS)).astype(np.float32))
    return folder


def _quantize(folder, name):
    from edgesep.quantize import QuantRecipe, quantize

    return quantize(folder / "attention.onnx", folder / name, recipe=QuantRecipe(mode="int8", samples=16),
                    calibration=str(folder / "calibration.npy"), holdout=8, force=True)  # fmt: skip


def test_int8_attention_block_runs_in_one_partition_with_float_islands(block):
    import onnxruntime as ort

    from edgesep.convert.tflite_inspect import delegation, op_histogram
    from edgesep.runners.tflite import run_tflite

    result = _quantize(block, "attention_int8.tflite")
    runtime = delegation(result.path)
    assert runtime.single_partition, runtime.summary()
    histogram = op_histogram(result.path)
    assert "AVERAGE_POOL_2D" not in histogram and histogram["DEPTHWISE_CONV_2D"] == 1  # the pool, in int8
    assert histogram["BATCH_MATMUL"] == 2 and histogram["SOFTMAX"] == 1 and histogram["RSQRT"] == 1

    from edgesep.runners.interpreter import op_details, open_interpreter, tensor_detail

    runner = open_interpreter(result.path, xnnpack=False)
    dtypes = {op["op_name"]: tensor_detail(runner, op["outputs"][0])["dtype"].__name__ for op in op_details(runner)}
    assert dtypes["BATCH_MATMUL"] == dtypes["SOFTMAX"] == dtypes["RSQRT"] == "float32"  # the islands
    assert dtypes["DEPTHWISE_CONV_2D"] == dtypes["FULLY_CONNECTED"] == "int8"  # the rest stays int8
    # numerics: the int8 model against onnxruntime's float model on inputs it was not calibrated on
    x = np.random.default_rng(2).standard_normal((8, 4, 3, 2 * TOKENS)).astype(np.float32)
    session = ort.InferenceSession(str(block / "attention.onnx"), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    got = run_tflite(result.path.read_bytes(), [[x[i : i + 1].transpose(0, 2, 3, 1).copy()] for i in range(len(x))]).outputs[0]
    cosine = float(np.dot(expected.ravel(), got.ravel()) / np.linalg.norm(expected) / np.linalg.norm(got))
    assert cosine > 0.995, cosine  # measured 0.9994
    assert result.fidelity.cosine > 0.995, result.fidelity  # vs the float32 TFLite model on the held-out samples


def test_without_islands_the_same_block_leaves_its_int8_attention_to_reference_kernels(block, monkeypatch):
    """What the islands fix: with none, XNNPACK refuses int8 BATCH_MATMUL, SOFTMAX, RSQRT and the epsilon ADD
    (its scale is ~1e-5 of the variance's; XNNPACK's int8 ADD takes input/output scale ratios >= 2^-10)."""
    from edgesep.convert.tflite_inspect import delegation
    from edgesep.quantize import engine

    monkeypatch.setattr(engine, "ISLAND_PASSES", 0)
    result = _quantize(block, "attention_int8_no_islands.tflite")
    runtime = delegation(result.path)
    assert runtime.partitions > 1
    left_out = sorted(op.op for op in runtime.left_out)
    assert left_out == ["ADD", "BATCH_MATMUL", "BATCH_MATMUL", "RSQRT", "SOFTMAX"], runtime.summary()


def test_int8_prelu_and_channel_shuffle_run_in_one_partition_and_match_onnxruntime(tmp_path):
    import onnx
    import onnxruntime as ort

    from edgesep.convert.tflite_inspect import delegation, op_histogram
    from edgesep.quantize import QuantRecipe, quantize
    from edgesep.runners.tflite import run_tflite

    rng = np.random.default_rng(3)
    inits = {
        "w1": (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "b1": np.zeros(8, np.float32),
        "slope": np.array([0.25, 0.1, -0.05, 0.3, 0.2, 0.6, 0.01, 0.4], np.float32).reshape(8, 1, 1),
        "grid": np.array([1, 2, 4, 6, 6], np.int64), "flat": np.array([1, 8, 6, 6], np.int64),
        "w2": (rng.standard_normal((4, 8, 1, 1)) * 0.3).astype(np.float32), "b2": np.zeros(4, np.float32),
    }  # fmt: skip
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
        node("PRelu", ["c", "slope"], ["p"]),
        node("Reshape", ["p", "grid"], ["g"]),
        node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
        node("Reshape", ["t", "flat"], ["s"]),
        node("Conv", ["s", "w2", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "prelu_shuffle", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "model.onnx")
    np.save(tmp_path / "calibration.npy", rng.standard_normal((24, 3, 6, 6)).astype(np.float32))
    result = quantize(tmp_path / "model.onnx", tmp_path / "model_int8.tflite", recipe=QuantRecipe(mode="int8", samples=16),
                      calibration=str(tmp_path / "calibration.npy"), holdout=8)  # fmt: skip
    runtime = delegation(result.path)
    assert runtime.single_partition, runtime.summary()
    histogram = op_histogram(result.path)
    assert "PRELU" not in histogram and "GATHER" not in histogram and histogram["TRANSPOSE"] == 2, histogram
    x = rng.standard_normal((8, 1, 3, 6, 6)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"x": sample})[0] for sample in x]).transpose(0, 2, 3, 1)
    got = run_tflite(result.path.read_bytes(), [[sample.transpose(0, 2, 3, 1).copy()] for sample in x]).outputs[0]
    cosine = float(np.dot(expected.ravel(), got.ravel()) / np.linalg.norm(expected) / np.linalg.norm(got))
    assert cosine > 0.995, cosine  # measured 0.9993
