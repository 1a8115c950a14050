"""Helpers of the converter tests (a uniquely named module: every test folder has its own conftest.py)."""

from __future__ import annotations

import numpy as np


def make_model(nodes, inputs, outputs, initializers=None, *, opset: int = 17):
    """An ONNX model from helper nodes; ``inputs``/``outputs`` are (name, shape) pairs, initializers a dict."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if any(shape is None for _, shape in outputs):  # fill output shapes so that onnx.checker accepts the file
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model)
        known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        for value in model.graph.output:
            if value.name in known and known[value.name].type.tensor_type.HasField("shape"):
                value.type.CopyFrom(known[value.name].type)
    return model


def conv_relu_model(channels: int = 6):
    """A seeded 3x3 Conv + Relu on a 1x3x8x8 input: the smallest real model for CLI and fault tests."""
    from onnx import helper

    rng = np.random.default_rng(0)
    return make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        [("x", [1, 3, 8, 8])], [("y", [1, channels, 8, 8])],
        {"w": rng.standard_normal((channels, 3, 3, 3)).astype(np.float32),
         "b": rng.standard_normal(channels).astype(np.float32)},
    )  # fmt: skip


def convert_in_memory(model, *, keep_nchw: bool = False, tolerance: float = 1e-4, samples: int = 2):
    """Lower, convert and verify without touching disk; returns (fidelity, op histogram, lowered)."""
    from edgesep.convert.lowering import lower
    from edgesep.convert.tflite import to_tflite_bytes
    from edgesep.convert.tflite_inspect import op_histogram
    from edgesep.convert.verify import verify_tflite

    lowered = lower(model, keep_nchw=keep_nchw)
    model_bytes = to_tflite_bytes(lowered)
    fidelity = verify_tflite(model, model_bytes, lowered, tolerance=tolerance, samples=samples)
    return fidelity, op_histogram(model_bytes), lowered
