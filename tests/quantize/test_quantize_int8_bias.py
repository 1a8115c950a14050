"""Empirical bias correction on the int8 TFLite model (edgesep/quantize/int8_bias.py): no PyTorch model needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from quantize_helpers import conv_depthwise_dense

from edgesep.quantize.recipe import QuantRecipe

tf = pytest.importorskip("tensorflow")


def _float_model() -> bytes:
    """conv 3x3 (+bias, relu) -> depthwise 3x3 (+bias) -> reshape -> dense (+bias): the three corrected op types,
    plus int32 constants that are no biases (the reshape's shape)."""
    return conv_depthwise_dense(channels_in=3, channels=8, stride=1, weight_scale=0.4, dense_scale=0.05, depthwise_relu6=False)


def _skew_first_conv(model: bytes) -> bytes:
    """Add +3 to every int8 weight of the first CONV_2D: a deliberately biased weight quantization."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgesep.runners.interpreter import op_details, open_interpreter

    runner = open_interpreter(model, xnnpack=False, allocate=False)
    weight = next(op["inputs"][1] for op in op_details(runner) if op["op_name"] == "CONV_2D")
    fb = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    buffer = fb.buffers[fb.subgraphs[0].tensors[weight].buffer]
    values = np.frombuffer(bytes(bytearray(buffer.data)), np.int8).astype(np.int16)
    buffer.data = np.clip(values + 3, -127, 127).astype(np.int8).view(np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(fb))


def _mean_shift(model: bytes, reference: bytes, samples) -> float:
    """Mean over output channels of |mean int8 output - mean float output| on ``samples``."""
    from edgesep.runners.tflite import run_tflite

    got, ref = run_tflite(model, samples).outputs[0], run_tflite(reference, samples).outputs[0]
    return float(np.mean(np.abs(got.mean(axis=0) - ref.mean(axis=0))))


def _buffers(model: bytes) -> list[bytes]:
    from tensorflow.lite.tools import flatbuffer_utils

    fb = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    return [b"" if b.data is None else bytes(bytearray(b.data)) for b in fb.buffers]


def test_corrects_a_deliberate_weight_shift_and_touches_only_biases():
    from edgesep.convert.tflite_inspect import delegation, op_histogram
    from edgesep.quantize import engine
    from edgesep.quantize.int8_bias import correct_int8_bias
    from edgesep.runners.interpreter import op_details, open_interpreter

    float_bytes = _float_model()
    rng = np.random.default_rng(1)
    calib = [[rng.random((1, 8, 8, 3), dtype=np.float32)] for _ in range(48)]
    held_out = [[rng.random((1, 8, 8, 3), dtype=np.float32)] for _ in range(48)]
    calibrated = engine.calibrate(float_bytes, lambda: calib)
    skewed = _skew_first_conv(engine.quantize_calibrated(calibrated, QuantRecipe()))
    corrected, report = correct_int8_bias(skewed, calibrated, calib)

    before, after = _mean_shift(skewed, float_bytes, held_out), _mean_shift(corrected, float_bytes, held_out)
    assert before > 0.08  # measured 0.120 (the skew reaches the logits through both later layers)
    assert after < before / 10  # measured 0.0055: 22x smaller, on samples the correction never saw
    assert [layer.op for layer in report.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]
    assert [layer.level for layer in report.layers] == [1, 2, 3] and report.passes == 3 and not report.skipped

    runner = open_interpreter(corrected, xnnpack=False, allocate=False)
    biases = {op["inputs"][2] for op in op_details(runner) if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    from tensorflow.lite.tools import flatbuffer_utils

    tensors = flatbuffer_utils.convert_bytearray_to_object(bytearray(corrected)).subgraphs[0].tensors
    bias_buffers = {tensors[i].buffer for i in biases}
    old, new = _buffers(skewed), _buffers(corrected)
    assert len(old) == len(new) and len(corrected) == len(skewed)
    changed = {i for i, (a, b) in enumerate(zip(old, new)) if a != b}
    assert changed and changed <= bias_buffers  # only biases move; weights, shapes and other constants stay
    assert op_histogram(corrected) == op_histogram(skewed)
    assert delegation(corrected).single_partition


def test_shared_bias_buffers_are_split_before_correction():
    from tensorflow.lite.tools import flatbuffer_utils

    from edgesep.quantize import engine
    from edgesep.quantize.int8_bias import correct_int8_bias
    from edgesep.runners.interpreter import op_details, open_interpreter

    float_bytes = _float_model()
    rng = np.random.default_rng(2)
    calib = [[rng.random((1, 8, 8, 3), dtype=np.float32)] for _ in range(8)]
    calibrated = engine.calibrate(float_bytes, lambda: calib)
    model = engine.quantize_calibrated(calibrated, QuantRecipe())
    runner = open_interpreter(model, xnnpack=False, allocate=False)
    conv, depthwise = (
        next(op["inputs"][2] for op in op_details(runner) if op["op_name"] == name) for name in ("CONV_2D", "DEPTHWISE_CONV_2D")
    )
    fb = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    tensors = fb.subgraphs[0].tensors
    tensors[depthwise].buffer = tensors[conv].buffer  # both have 8 entries: one buffer, two users
    shared = bytes(flatbuffer_utils.convert_object_to_bytearray(fb))
    corrected, report = correct_int8_bias(shared, calibrated, calib)
    assert len(report.layers) == 3
    out = flatbuffer_utils.convert_bytearray_to_object(bytearray(corrected))
    conv_buffer, depthwise_buffer = (out.subgraphs[0].tensors[i].buffer for i in (conv, depthwise))
    assert conv_buffer != depthwise_buffer  # each corrected on its own


def test_quantize_onnx_with_empirical_bias_correction_and_no_pytorch_model(digits_onnx, tmp_path, capsys):
    """`edgesep quantize model.onnx --bias-correction empirical`: per-tensor digits SepCNN, held-out set untouched."""
    from edgesep.cli.main import main

    base = ["quantize", str(digits_onnx), "--calib", "digits", "--per-tensor", "--samples", "64", "--holdout", "64", "--json"]
    assert main([*base, "-o", str(tmp_path / "plain.tflite")]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*base, "-o", str(tmp_path / "bias.tflite"), "--bias-correction", "empirical"]) == 0
    corrected = json.loads(capsys.readouterr().out)
    report = corrected["prepared"]["bias_correction"]
    assert report["on"] == "int8 tflite" and len(report["layers"]) == 8 and report["samples"] == 64
    sidecar = json.loads((tmp_path / "bias.tflite.json").read_text())
    assert sidecar["recipe"]["bias_correction"] == "empirical"
    # measured on the 64 held-out digits: mean |logit error| 0.101 -> 0.061, 1 - cosine 4.5e-4 -> 1.6e-4
    assert corrected["fidelity"]["mean_abs"] < 0.75 * plain["fidelity"]["mean_abs"]
    assert 1 - corrected["fidelity"]["cosine"] < 0.6 * (1 - plain["fidelity"]["cosine"])
    assert corrected["fidelity"]["top1_agreement"] == 1.0
    assert corrected["size_bytes"] == plain["size_bytes"]
