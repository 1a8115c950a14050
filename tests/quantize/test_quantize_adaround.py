"""AdaRound of the int8 TFLite model's weights (edgesep/quantize/adaround.py): no PyTorch model needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from quantize_helpers import conv_depthwise_dense

from edgesep.errors import ConfigError
from edgesep.quantize.recipe import QuantRecipe

tf = pytest.importorskip("tensorflow")


def _float_model() -> bytes:
    """conv 3x3 (+bias, relu) -> depthwise 3x3 stride 2 (+bias, relu6) -> reshape -> dense (+bias) on 8x8 digits."""
    return conv_depthwise_dense(channels_in=1, channels=16, stride=2, weight_scale=0.3, dense_scale=0.1, depthwise_relu6=True)


def _digits() -> tuple[list, list]:
    """64 calibration and 200 held-out digits (real 8x8 images, NHWC)."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    order = np.random.default_rng(0).permutation(len(images))
    return [[images[i][None, :, :, None]] for i in order[:64]], [[images[i][None, :, :, None]] for i in order[64:264]]


def _weights(model: bytes) -> dict[str, np.ndarray]:
    """Op name + position -> its int8 weights."""
    from edgesep.runners.interpreter import op_details, open_interpreter

    runner = open_interpreter(model, xnnpack=False)
    ops = [op for op in op_details(runner) if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    return {f"{op['op_name']}{n}": runner.get_tensor(op["inputs"][1]).astype(np.int64) for n, op in enumerate(ops)}


def test_adaround_lowers_the_held_out_error_within_one_step_of_nearest():
    from edgesep.convert.tflite_inspect import delegation, op_histogram
    from edgesep.quantize import engine
    from edgesep.quantize.adaround import adaround_int8
    from edgesep.runners.tflite import run_tflite

    float_bytes = _float_model()
    calib, held_out = _digits()
    calibrated = engine.calibrate(float_bytes, lambda: calib)
    nearest = engine.quantize_calibrated(calibrated, QuantRecipe())
    rounded, report = adaround_int8(nearest, calibrated, calib, iterations=300)

    reference = run_tflite(float_bytes, held_out).outputs[0]
    before = float(np.mean((run_tflite(nearest, held_out).outputs[0] - reference) ** 2))
    after = float(np.mean((run_tflite(rounded, held_out).outputs[0] - reference) ** 2))
    assert after < 0.85 * before  # measured 2.04e-5 -> 1.62e-5 on 200 digits the rounding never saw
    assert [layer.op for layer in report.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]
    assert [layer.level for layer in report.layers] == [1, 2, 3] and report.passes == 3 and not report.skipped
    for layer in report.layers:  # each layer's own output error on its fitted positions
        assert layer.loss_adaround < 0.9 * layer.loss_nearest and 0 < layer.channels_changed <= layer.channels
        assert 0.02 < layer.weights_changed < 0.3  # measured 0.10, 0.10, 0.10 (layer errors 45, 13, 56 % lower)

    old, new = _weights(nearest), _weights(rounded)
    for name in old:
        assert np.abs(new[name] - old[name]).max() <= 1 and np.abs(new[name]).max() <= 127  # one LSB at most
    assert len(rounded) == len(nearest) and op_histogram(rounded) == op_histogram(nearest)
    assert delegation(rounded).to_dict() == delegation(nearest).to_dict()
    again, _ = adaround_int8(nearest, calibrated, calib, iterations=300)
    assert again == rounded  # seeded: the same bytes


def test_weight_rounding_is_a_validated_recipe_field():
    assert QuantRecipe().weight_rounding == "nearest"
    recipe = QuantRecipe(weight_rounding="adaround")
    assert QuantRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(ConfigError, match="weight_rounding must be one of nearest, adaround, got 'stochastic'"):
        QuantRecipe(weight_rounding="stochastic")
    with pytest.raises(ConfigError, match="applies to mode 'int8' only"):
        QuantRecipe(mode="float16", weight_rounding="adaround")


def test_cli_weight_rounding_adaround_then_bias_on_onnx(digits_onnx, tmp_path, capsys):
    """`edgesep quantize model.onnx --weight-rounding adaround --bias-correction empirical`: per-tensor digits SepCNN."""
    from edgesep.cli.main import main

    base = ["quantize", str(digits_onnx), "--calib", "digits", "--per-tensor", "--samples", "64", "--holdout", "64", "--json"]
    assert main([*base, "-o", str(tmp_path / "plain.tflite")]) == 0
    plain = json.loads(capsys.readouterr().out)
    out = tmp_path / "rounded.tflite"
    assert main([*base, "-o", str(out), "--weight-rounding", "adaround", "--bias-correction", "empirical"]) == 0
    rounded = json.loads(capsys.readouterr().out)
    report = rounded["prepared"]["weight_rounding"]
    assert report["method"] == "adaround" and report["on"] == "int8 tflite" and report["samples"] == 32
    assert len(report["layers"]) == 8 and not report["skipped"]
    assert all(layer["loss_adaround"] <= layer["loss_nearest"] for layer in report["layers"])
    assert rounded["prepared"]["bias_correction"]["on"] == "int8 tflite"  # after the rounding
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["recipe"]["weight_rounding"] == "adaround" and sidecar["recipe"]["bias_correction"] == "empirical"
    assert rounded["size_bytes"] == plain["size_bytes"]
    # measured on the 64 held-out digits: mean |logit error| 0.101 -> 0.055, 1 - cosine 4.5e-4 -> 1.4e-4 (AdaRound
    # alone: 0.057 and 1.4e-4; bias correction alone: 0.061 and 1.6e-4)
    assert rounded["fidelity"]["mean_abs"] < 0.65 * plain["fidelity"]["mean_abs"]
    assert 1 - rounded["fidelity"]["cosine"] < 0.4 * (1 - plain["fidelity"]["cosine"])
    assert rounded["fidelity"]["top1_agreement"] == 1.0


def test_cli_unknown_weight_rounding_exits_2(digits_onnx, tmp_path, capsys):
    from edgesep.cli.main import main

    code = main(["quantize", str(digits_onnx), "--calib", "digits", "--weight-rounding", "up", "-o", str(tmp_path / "x.tflite")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == ["edgesep: error: recipe weight_rounding must be one of nearest, adaround, got 'up'"]


def test_a_shared_weight_buffer_is_split_before_it_changes():
    """The depthwise weight tensor made to share the conv's 144-byte buffer: its values no longer match its float
    weights (skipped), and the conv's new rounding must not leak into it."""
    from tensorflow.lite.tools import flatbuffer_utils

    from edgesep.quantize import engine
    from edgesep.quantize.adaround import adaround_int8
    from edgesep.runners.interpreter import op_details, open_interpreter

    calib, _ = _digits()
    calibrated = engine.calibrate(_float_model(), lambda: calib)
    model = engine.quantize_calibrated(calibrated, QuantRecipe())
    runner = open_interpreter(model, xnnpack=False, allocate=False)
    conv, depthwise = (
        next(op["inputs"][1] for op in op_details(runner) if op["op_name"] == name) for name in ("CONV_2D", "DEPTHWISE_CONV_2D")
    )
    fb = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    tensors = fb.subgraphs[0].tensors
    tensors[depthwise].buffer = tensors[conv].buffer  # one buffer, two weight tensors
    shared = bytes(flatbuffer_utils.convert_object_to_bytearray(fb))
    rounded, report = adaround_int8(shared, calibrated, calib, iterations=300)
    assert [layer.op for layer in report.layers] == ["CONV_2D", "FULLY_CONNECTED"]
    assert len(report.skipped) == 1 and "round to other int8 values" in report.skipped[0]
    before, after = _weights(shared), _weights(rounded)
    assert not np.array_equal(after["CONV_2D0"], before["CONV_2D0"])  # the conv was rounded anew ...
    assert np.array_equal(after["DEPTHWISE_CONV_2D1"], before["DEPTHWISE_CONV_2D1"])  # ... on its own copy
    assert len(rounded) > len(shared)
