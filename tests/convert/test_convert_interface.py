"""The .tflite keeps the ONNX interface (order, names, signature keys) for float and int8; dynamic dims in all
their spellings; --input-shape per input; the runtime view (XNNPACK partitions) in the result and sidecar."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from convert_helpers import make_model
from onnx import helper

from edgesep.cli.main import main
from edgesep.convert import convert
from edgesep.errors import InputError, ShapeError
from edgesep.runners.interpreter import open_interpreter


def _two_output_model(path, *, batch_dim="N"):
    """Conv -> Relu -> GlobalAveragePool -> Flatten named "28" listed first, the 4-D conv map "29" second
    (the order the TFLite converter used to reverse), like MTCNN's boxes/probabilities."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["29"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["29"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["28"]),
    ]
    model = make_model(nodes, [("x", [1, 3, 12, 12])], [("28", None), ("29", None)],
                       {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3,
                        "b": rng.standard_normal(4).astype(np.float32)})  # fmt: skip
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    if batch_dim == "N":
        dim.dim_param = "N"
    elif batch_dim == -1:
        dim.dim_value = -1  # how Paddle2ONNX writes a dynamic dim
    import onnx

    onnx.save(model, path)
    return path


def _signature_outputs(path, x_nhwc):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    return interpreter, runner(x=x_nhwc)


def test_outputs_keep_onnx_order_names_and_signature(tmp_path):
    onnx_path = _two_output_model(tmp_path / "m.onnx")
    result = convert(onnx_path, tmp_path / "m.tflite")
    assert result.output_names == ("28", "29")
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    expected = ort.InferenceSession(str(onnx_path)).run(None, {"x": x})
    interpreter, outputs = _signature_outputs(result.path, x.transpose(0, 2, 3, 1))
    assert [d["name"] for d in interpreter.get_input_details()] == ["x"]
    assert [d["name"] for d in interpreter.get_output_details()] == ["28", "29"]  # ONNX order, ONNX names
    assert set(outputs) == {"28", "29"}
    np.testing.assert_allclose(outputs["28"], expected[0], atol=1e-5)
    np.testing.assert_allclose(outputs["29"].transpose(0, 3, 1, 2), expected[1], atol=1e-5)


def test_signature_is_read_by_tflite_inspect(tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils

    from edgesep.convert.tflite_inspect import signature

    result = convert(_two_output_model(tmp_path / "m.onnx"), tmp_path / "m.tflite")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(result.path.read_bytes()))
    found = signature(model, "serving_default")
    interpreter = open_interpreter(result.path, allocate=False)
    assert (found.index, found.subgraph) == (0, 0)
    assert found.inputs == {d["name"]: d["index"] for d in interpreter.get_input_details()} == {"x": found.inputs["x"]}
    assert list(found.outputs) == ["28", "29"]
    assert list(found.outputs.values()) == [d["index"] for d in interpreter.get_output_details()]
    with pytest.raises(ShapeError, match="no single 'other' signature"):
        signature(model, "other")


def test_int8_model_keeps_the_interface(tmp_path):
    from edgesep.quantize import quantize
    from edgesep.quantize.recipe import QuantRecipe

    onnx_path = _two_output_model(tmp_path / "m.onnx")
    data = np.random.default_rng(2).standard_normal((40, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "calib.npy", data)
    result = quantize(onnx_path, tmp_path / "q.tflite", recipe=QuantRecipe(mode="int8", samples=32),
                      calibration=str(tmp_path / "calib.npy"), holdout=8)  # fmt: skip
    expected = ort.InferenceSession(str(onnx_path)).run(None, {"x": data[:1]})
    interpreter, outputs = _signature_outputs(result.path, data[:1].transpose(0, 2, 3, 1))
    assert [d["name"] for d in interpreter.get_output_details()] == ["28", "29"]
    assert np.corrcoef(outputs["29"].transpose(0, 3, 1, 2).ravel(), expected[1].ravel())[0, 1] > 0.99


@pytest.mark.parametrize("batch_dim", ["N", -1, "empty"])
def test_dynamic_dims_in_every_spelling(tmp_path, batch_dim):
    onnx_path = _two_output_model(tmp_path / "m.onnx", batch_dim=batch_dim)
    result = convert(onnx_path, tmp_path / "m.tflite", input_shape=(1, 3, 12, 12))
    assert result.input_shapes == ((1, 12, 12, 3),)
    assert convert(onnx_path, tmp_path / "n.tflite").input_shapes == ((1, 12, 12, 3),)  # dynamic batch -> 1


def test_negative_spatial_dims_need_a_shape_and_take_one(tmp_path):
    import onnx

    model = onnx.load(_two_output_model(tmp_path / "m.onnx", batch_dim=-1))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim in dims[2:]:
        dim.Clear()
        dim.dim_value = -1
    onnx.save(model, tmp_path / "p.onnx")
    with pytest.raises(ShapeError, match=r"dynamic dimensions \(1, 3, \?, \?\).*--input-shape"):
        convert(tmp_path / "p.onnx", tmp_path / "p.tflite")
    result = convert(tmp_path / "p.onnx", tmp_path / "p.tflite", input_shape={"x": (1, 3, 16, 20)})
    assert result.input_shapes == ((1, 16, 20, 3),)
    with pytest.raises(InputError, match="unknown input 'y'"):
        convert(tmp_path / "p.onnx", tmp_path / "q.tflite", input_shape={"y": (1, 3, 16, 20)})


def test_cli_named_input_shape_and_runtime_report(tmp_path, capsys):
    onnx_path = _two_output_model(tmp_path / "m.onnx", batch_dim=-1)
    output = tmp_path / "m.tflite"
    assert main(["convert", str(onnx_path), "-o", str(output), "--input-shape", "x:1,3,12,12", "--report"]) == 0
    printed = capsys.readouterr().out
    assert "runtime: 1 XNNPACK partition(s), all" in printed
    sidecar = json.loads(output.with_name("m.tflite.json").read_text())
    assert sidecar["runtime"]["partitions"] == 1 and sidecar["runtime"]["left_out"] == []
    assert [o["name"] for o in sidecar["outputs"]] == ["28", "29"]
    assert main(["convert", str(onnx_path), "-o", str(output), "--force", "--input-shape", "1,3,x,12"]) == 2


def test_near_zero_outputs_are_judged_against_a_floor_and_wrong_numbers_still_fail(tmp_path):
    """A detector-like map that is ~0 everywhere passes when right (relative error alone would fail it)."""
    from edgesep.errors import ToleranceError
    from edgesep.numerics import check_stacked

    reference = [[np.full((1, 1, 8, 8), 1e-6, np.float32)]]
    close = [[reference[0][0] + 1e-7]]
    assert check_stacked(reference, close, tolerance=1e-3, what="t").max_abs == pytest.approx(1e-7, rel=1e-3)
    with pytest.raises(ToleranceError, match="output scale"):
        check_stacked(reference, [[reference[0][0] + 1e-4]], tolerance=1e-3, what="t")
    with pytest.raises(ToleranceError):
        check_stacked(reference, close, tolerance=0.0, what="t")  # tolerance 0 stays exact


def test_verify_data_is_the_users_inputs(tmp_path, capsys):
    onnx_path = _two_output_model(tmp_path / "m.onnx")
    data = np.random.default_rng(3).standard_normal((5, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "mine.npy", data)
    result = convert(onnx_path, tmp_path / "m.tflite", verify_data=tmp_path / "mine.npy")
    sidecar = json.loads((tmp_path / "m.tflite.json").read_text())
    assert sidecar["verification"]["samples"] == 5 and result.fidelity.cosine > 0.9999
    np.save(tmp_path / "wrong.npy", data[:, :2])
    assert main(["convert", str(onnx_path), "-o", str(tmp_path / "w.tflite"), "--verify-data", str(tmp_path / "wrong.npy")]) == 2
    assert "needs samples of shape (3, 12, 12)" in capsys.readouterr().err
    np.savez(tmp_path / "named.npz", y=data)
    assert main(["convert", str(onnx_path), "-o", str(tmp_path / "n.tflite"), "--verify-data", str(tmp_path / "named.npz")]) == 2
    assert "no array for input 'x'" in capsys.readouterr().err
    assert not (tmp_path / "w.tflite").exists() and not (tmp_path / "n.tflite").exists()
