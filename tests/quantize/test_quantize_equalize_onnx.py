"""Activation equalization on an ONNX graph (equalize_onnx.py): exact in float, fits int8's one scale per tensor."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesep.errors import ConfigError
from edgesep.quantize.equalize_onnx import equalize_activations
from edgesep.quantize.recipe import QuantRecipe

CHANNELS = 8
SPREAD = np.geomspace(0.01, 10.0, CHANNELS)  # per-channel range of the first conv's output: 1000x apart


def _model(*, spelled_out: bool = False) -> onnx.ModelProto:
    """x -> Conv(3->8) -> [Mul 1.5, Add 0.1] -> HardSwish -> [Mul 0.9, Add -0.05] -> depthwise Conv -> Relu ->
    pointwise Conv(8->4). The first conv's channels span 1000x in range; the last conv reads every channel with a
    weight inverse to its range, so each channel matters to the output."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(CHANNELS, 3, 3, 3)).astype(np.float32) * SPREAD[:, None, None, None].astype(np.float32) / 3
    b1 = (rng.normal(size=CHANNELS) * SPREAD * 0.1).astype(np.float32)
    w2 = rng.normal(size=(CHANNELS, 1, 3, 3)).astype(np.float32) / 3
    w3 = (rng.normal(size=(4, CHANNELS, 1, 1)) / SPREAD[None, :, None, None]).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (w3, "w3"))]
    scalars = {"a": 1.5, "b": 0.1, "c": 0.9, "d": -0.05, "three": 3.0, "zero": 0.0, "six": 6.0}
    inits += [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in scalars.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c1", "a"], ["m1"]),
        helper.make_node("Add", ["m1", "b"], ["h_in"]),
    ]
    if spelled_out:  # Paddle2ONNX's HardSwish
        nodes += [
            helper.make_node("Add", ["h_in", "three"], ["p3"]),
            helper.make_node("Clip", ["p3", "zero", "six"], ["r6"]),
            helper.make_node("Mul", ["h_in", "r6"], ["xr"]),
            helper.make_node("Div", ["xr", "six"], ["h"]),
        ]
    else:
        nodes.append(helper.make_node("HardSwish", ["h_in"], ["h"]))
    nodes += [
        helper.make_node("Mul", ["h", "c"], ["m2"]),
        helper.make_node("Add", ["m2", "d"], ["dw_in"]),
        helper.make_node("Conv", ["dw_in", "w2"], ["c2"], pads=[1, 1, 1, 1], group=CHANNELS),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "spread", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def _images(count: int, seed: int) -> np.ndarray:
    """Smooth image-like inputs (blurred noise plus gradients), not white noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(count, 3, 8, 8)).astype(np.float32)
    images = np.repeat(np.repeat(base, 2, axis=2), 2, axis=3)
    ramp = np.linspace(-1, 1, 16, dtype=np.float32)
    return (images * 0.5 + ramp[None, None, :, None] * rng.uniform(-1, 1, size=(count, 3, 1, 1))).astype(np.float32)


def _run(model: onnx.ModelProto, x: np.ndarray, names: list[str] | None = None) -> list[np.ndarray]:
    """The model's outputs (or the named tensors) on a batch, one image at a time (the graph has batch 1)."""
    if names:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        model.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    runs = [session.run(names, {"x": image[None]}) for image in x]
    return [np.concatenate([run[i] for run in runs]) for i in range(len(runs[0]))]


@pytest.mark.parametrize("spelled_out", [False, True])
def test_equalized_graph_computes_the_same_and_balances_channels(spelled_out):
    model = _model(spelled_out=spelled_out)
    samples = [{"x": image[None]} for image in _images(16, seed=1)]
    equalized, report = equalize_activations(model, samples)

    assert [(p.producer, p.activation, p.depthwise_consumer) for p in report.pairs] == [
        (model.graph.node[0].name, "HardSwish", True),
        (next(n.name for n in model.graph.node if n.op_type == "Conv" and any(a.name == "group" for a in n.attribute)), "Relu", False),
    ]
    assert report.max_relative_error < 1e-5
    held_out = _images(4, seed=2)
    for image in held_out:
        (before,), (after,) = _run(model, image[None]), _run(equalized, image[None])
        np.testing.assert_allclose(after, before, rtol=0, atol=1e-5 * np.abs(before).max())
    # the tensor the depthwise conv reads: its channels' ranges were 1000x apart, now within 10x (measured 5x: the
    # scale serves both the HardSwish input and this tensor, and neither range may grow)
    calibration = _images(16, seed=1)
    ranges_before = np.abs(_run(model, calibration, ["dw_in"])[0]).max(axis=(0, 2, 3))
    ranges_after = np.abs(_run(equalized, calibration, ["dw_in"])[0]).max(axis=(0, 2, 3))
    assert ranges_before.min() / ranges_before.max() < 0.01
    assert ranges_after.min() / ranges_after.max() > 0.1
    assert ranges_after.max() <= ranges_before.max() * 1.0001  # no range grows


def test_a_conv_whose_output_feeds_two_nodes_is_left_alone():
    model = _model()
    model.graph.output.append(helper.make_tensor_value_info("h_in", TensorProto.FLOAT, None))  # h_in read outside the chain
    equalized, report = equalize_activations(model, [{"x": _images(1, seed=1)}])
    assert [p.activation for p in report.pairs] == ["Relu"]
    np.testing.assert_allclose(_run(equalized, _images(1, seed=3))[0], _run(model, _images(1, seed=3))[0], atol=1e-4)


def test_int8_with_equalized_activations_is_closer_to_float_with_as_many_ops(tmp_path, capsys):
    from edgesep.cli.main import main
    from edgesep.convert.tflite_inspect import delegation, op_histogram
    from edgesep.quantize import quantize

    onnx_path = tmp_path / "spread.onnx"
    onnx.save(_model(spelled_out=True), str(onnx_path))
    data = tmp_path / "images.npy"
    np.save(data, _images(48, seed=4))
    plain = quantize(onnx_path, tmp_path / "plain.tflite", recipe=QuantRecipe(samples=32), calibration=str(data), holdout=16)
    equal_path = tmp_path / "equalized.tflite"
    code = main(["-q", "quantize", str(onnx_path), "--calib", str(data), "-o", str(equal_path), "--samples", "32", "--holdout", "16",
                 "--equalize-activations", "--json"])  # fmt: skip
    equal = json.loads(capsys.readouterr().out)
    assert code == 0 and equal["recipe"]["equalize_activations"] is True
    assert plain.fidelity.cosine < 0.6  # measured 0.39: the small channels are lost in one int8 scale
    assert equal["fidelity"]["cosine"] > 0.995  # measured 0.998
    assert len(equal["prepared"]["activation_equalization"]["pairs"]) == 2
    # the scaled HardSwish gate is the DEPTHWISE_CONV_2D the int8 HardSwish's "+ 3" already is: as many ops
    # (a scalar Add that stayed an ADD is a per-channel one, a DEPTHWISE_CONV_2D, once equalized)
    assert sum(op_histogram(equal_path).values()) == sum(op_histogram(plain.path).values())
    assert delegation(equal_path).single_partition and delegation(plain.path).single_partition


def test_recipe_refuses_equalized_activations_outside_int8():
    with pytest.raises(ConfigError, match="equalize_activations"):
        QuantRecipe(mode="float16", equalize_activations=True)
