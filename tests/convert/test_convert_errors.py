"""Bad input: unsupported ops, dynamic spatial dims, and the registry/order helpers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from convert_helpers import convert_in_memory, make_model  # noqa: E402
from onnx import TensorProto, helper

from edgesep.convert import convert
from edgesep.convert.registry import supported_ops
from edgesep.errors import ShapeError, UnsupportedOpError


def _dynamic_model(dims):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["y"])],
        "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dims[0], dims[1], 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_unsupported_op_names_type_node_and_supported_list(tmp_path):
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("LRN", ["r"], ["y"], size=3, name="norm1")],
        [("x", [1, 4, 5, 5])],
        [("y", None)],
    )
    source = tmp_path / "lrn.onnx"
    onnx.save(model, str(source))
    with pytest.raises(UnsupportedOpError) as info:
        convert(source, tmp_path / "lrn.tflite")
    error = info.value
    assert error.op_type == "LRN" and error.node_name == "norm1"
    assert "Conv" in error.supported and "DepthToSpace" not in error.supported
    assert "'LRN'" in str(error) and "'norm1'" in str(error) and "\n" not in str(error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lrn.onnx"]


def test_unsupported_attribute_is_reported_with_detail():
    model = make_model(
        [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic", name="up")],
        [("x", [1, 2, 4, 4])],
        [("y", None)],
        {"s": np.array([1, 1, 2, 2], np.float32)},
    )
    with pytest.raises(UnsupportedOpError, match="mode='cubic'"):
        convert_in_memory(model)


def test_dynamic_spatial_dims_ask_for_input_shape(tmp_path):
    source = tmp_path / "dynamic.onnx"
    onnx.save(_dynamic_model(["batch", 3, "height", "width"]), str(source))
    with pytest.raises(ShapeError, match="--input-shape"):
        convert(source, tmp_path / "dynamic.tflite")
    result = convert(source, tmp_path / "dynamic.tflite", input_shape=(1, 3, 12, 10))
    assert result.input_shapes == ((1, 12, 10, 3),)
    assert result.fidelity.relative < 1e-6


def test_dynamic_batch_defaults_to_one():
    fidelity, _, lowered = convert_in_memory(_dynamic_model(["batch", 3, 8, 8]))
    assert lowered.input_shapes == ((1, 8, 8, 3),)
    assert fidelity.relative < 1e-6


def test_input_shape_that_contradicts_the_model(tmp_path):
    source = tmp_path / "fixed.onnx"
    onnx.save(_dynamic_model([1, 3, 8, 8]), str(source))
    with pytest.raises(ShapeError, match="fixed"):
        convert(source, tmp_path / "fixed.tflite", input_shape=(1, 3, 16, 16))


def test_supported_ops_cover_the_issue_list():
    wanted = {
        "Conv",
        "ConvTranspose",
        "BatchNormalization",
        "Relu",
        "Clip",
        "LeakyRelu",
        "PRelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Softmax",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "MatMul",
        "Gemm",
        "GlobalAveragePool",
        "AveragePool",
        "MaxPool",
        "ReduceMean",
        "Flatten",
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Split",
        "Slice",
        "Pad",
        "Resize",
        "Upsample",
        "Constant",
        "Identity",
        "Shape",
        "Gather",
        "Cast",
    }
    assert wanted <= set(supported_ops())
