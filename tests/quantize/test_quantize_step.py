"""quantize() on the trained digits SepCNN: accuracy, real int8 kernels, modes, I/O types, sidecar, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.errors import CalibrationError, InputError, OutputExistsError
from edgesep.fileio import sidecar_path
from edgesep.quantize import QuantRecipe, quantize
from edgesep.runners.tflite import run_tflite


@pytest.fixture(scope="module")
def digits_test():
    from edgesep.data.digits import load_digits_split

    split = load_digits_split()
    return split.x_test, split.y_test


@pytest.fixture(scope="module")
def int8_digits(digits_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "sepcnn_int8.tflite"
    return quantize(digits_onnx, out, recipe=QuantRecipe(), calibration="digits")


def _nhwc_samples(x: np.ndarray) -> list[list[np.ndarray]]:
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return [[x[i : i + 1]] for i in range(len(x))]


def _onnx_accuracy(onnx_path, x, y) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    return float(np.mean(logits.argmax(1) == y))


def test_int8_digits_accuracy_within_half_a_point(int8_digits, digits_onnx, digits_test):
    x, y = digits_test
    float_accuracy = _onnx_accuracy(digits_onnx, x, y)
    logits = run_tflite(int8_digits.path.read_bytes(), _nhwc_samples(x)).outputs[0]
    int8_accuracy = float(np.mean(logits.argmax(1) == y))
    assert float_accuracy > 0.9  # the trained default (H1) is a real classifier
    assert abs(int8_accuracy - float_accuracy) <= 0.005, (float_accuracy, int8_accuracy)


def test_int8_digits_has_int8_kernels_and_is_small(int8_digits):
    from edgesep.convert.tflite_inspect import op_histogram

    result = int8_digits
    assert result.kernel_dtypes["CONV_2D"] == "int8"
    assert result.kernel_dtypes["DEPTHWISE_CONV_2D"] == "int8"
    assert result.kernel_dtypes["FULLY_CONNECTED"] == "int8"
    histogram = op_histogram(result.path)
    assert histogram.get("CONV_2D", 0) >= 1 and histogram.get("DEPTHWISE_CONV_2D", 0) >= 1
    # Tiny, depthwise-heavy model: TFLite stores a float32 scale + int64 zero point per output channel for
    # every per-channel weight *and* bias tensor (24 B/channel, 7.2 kB of this 21.6 kB file), while a 3x3
    # depthwise channel has only 9 weight bytes.  Measured 0.55 per-channel; per-tensor is < 0.5 (below).
    assert result.size_ratio < 0.6
    assert result.fidelity.top1_agreement >= 0.99 and result.fidelity.cosine > 0.999
    assert result.held_out and result.eval_samples == 100


def test_int8_activations_are_int8(int8_digits):
    from edgesep.quantize.engine import interpreter

    runner = interpreter(int8_digits.path.read_bytes())
    conv_inputs = [
        np.dtype(runner._get_tensor_details(op["inputs"][0], 0)["dtype"]).name
        for op in runner._get_ops_details()
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
    ]
    assert conv_inputs and set(conv_inputs) == {"int8"}
    assert runner.get_input_details()[0]["dtype"] == np.float32  # default: float I/O with (de)quantize at the edges


def test_sidecar_records_recipe_and_calibration(int8_digits, digits_onnx):
    meta = json.loads(sidecar_path(int8_digits.path).read_text())
    assert QuantRecipe.from_dict(meta["recipe"]) == int8_digits.recipe == QuantRecipe()
    assert meta["format"] == "tflite" and meta["source"] == str(digits_onnx)
    assert meta["calibration"]["source"] == "digits" and meta["calibration"]["samples"] == 300
    assert meta["inputs"][0]["layout"] == "NHWC" and meta["inputs"][0]["shape"] == [1, 16, 16, 1]
    assert meta["verification"]["samples"] == 100 and meta["verification"]["cosine"] > 0.999


@pytest.mark.parametrize("input_type, output_type", [("int8", "uint8"), ("uint8", "int8")])
def test_integer_io_types(digits_onnx, tmp_path, input_type, output_type):
    from edgesep.quantize.engine import interpreter

    recipe = QuantRecipe(input_type=input_type, output_type=output_type, samples=100)
    result = quantize(digits_onnx, tmp_path / "q.tflite", recipe=recipe, calibration="digits", holdout=50)
    runner = interpreter(result.path.read_bytes())
    (inp,), (out,) = runner.get_input_details(), runner.get_output_details()
    assert np.dtype(inp["dtype"]).name == input_type and np.dtype(out["dtype"]).name == output_type
    scale, zero_point = inp["quantization"]
    # [0, 1] pixels: the input range starts at 0, so the zero point sits at the type's minimum
    assert scale == pytest.approx(1 / 255, rel=0.02) and zero_point == np.iinfo(input_type).min
    assert result.fidelity.top1_agreement >= 0.98 and result.fidelity.cosine > 0.999


@pytest.mark.parametrize("mode, max_ratio", [("float16", 0.65), ("dynamic", 0.6)])
def test_float16_and_dynamic_modes(digits_onnx, tmp_path, mode, max_ratio):
    # float16 measures agreement on digits; dynamic (no data needed) on 32 seeded random inputs
    calibration = "digits" if mode == "float16" else None
    result = quantize(digits_onnx, tmp_path / f"{mode}.tflite", recipe=QuantRecipe(mode=mode), calibration=calibration, holdout=50)
    if mode == "float16":
        assert set(result.kernel_dtypes.values()) == {"float16"}
        assert result.eval_samples == 50 and result.calibration["source"] == "digits"
        assert result.fidelity.top1_agreement == 1.0
    else:  # dynamic range keeps weights under 1024 elements (depthwise kernels, the 64x10 classifier) in float
        assert result.kernel_dtypes["CONV_2D"] == "float32,int8"
        assert result.eval_samples == 32 and result.calibration is None
    assert result.size_ratio < max_ratio
    assert result.fidelity.cosine > 0.9999 and not result.held_out


def test_per_tensor_weights_have_one_scale(digits_onnx, tmp_path):
    from edgesep.quantize.engine import interpreter

    result = quantize(
        digits_onnx, tmp_path / "pt.tflite", recipe=QuantRecipe(per_channel=False, samples=100), calibration="digits", holdout=50
    )
    runner = interpreter(result.path.read_bytes())
    scales = [
        runner._get_tensor_details(op["inputs"][1], 0)["quantization_parameters"]["scales"].size
        for op in runner._get_ops_details()
        if op["op_name"] == "CONV_2D"
    ]
    assert scales and set(scales) == {1}
    assert result.fidelity.top1_agreement >= 0.98
    assert result.size_ratio < 0.5  # without per-channel parameters the tiny model's file is under half


def test_edgesep_tflite_input_is_requantized_from_its_onnx(digits_onnx, tmp_path):
    from edgesep.convert import convert

    float_tflite = tmp_path / "float.tflite"
    convert(digits_onnx, float_tflite)
    result = quantize(float_tflite, tmp_path / "q.tflite", recipe=QuantRecipe(samples=50), calibration="digits", holdout=20)
    assert result.kernel_dtypes["DEPTHWISE_CONV_2D"] == "int8" and result.fidelity.cosine > 0.999
    third_party = tmp_path / "third_party.tflite"
    third_party.write_bytes(float_tflite.read_bytes())
    with pytest.raises(InputError, match="no edgesep sidecar"):
        quantize(third_party, tmp_path / "q2.tflite", calibration="digits")
    with pytest.raises(InputError, match="already quantized"):
        quantize(result.path, tmp_path / "q3.tflite", calibration="digits")


@pytest.fixture
def no_conversion(monkeypatch):
    """Make any lowering fail loudly: bad input must be refused before conversion starts."""
    import edgesep.convert.lowering as lowering

    def refuse(*args, **kwargs):
        raise AssertionError("conversion started before the input was validated")

    monkeypatch.setattr(lowering, "lower", refuse)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((8, 3, 16, 16), np.float32), r"expects \(1, 1, 16, 16\).*3 channels given, the model expects 1"),
        (np.zeros((8, 1, 32, 32), np.float32), r"shape \(1, 1, 32, 32\) but the model expects \(1, 1, 16, 16\)"),
        (np.zeros((8, 1, 16, 16), np.int64), "must be float32.*int64"),
    ],
)
def test_bad_calibration_is_refused_before_any_work(digits_onnx, tmp_path, no_conversion, array, message):
    np.save(tmp_path / "bad.npy", array)
    out = tmp_path / "q.tflite"
    with pytest.raises(CalibrationError, match=message):
        quantize(digits_onnx, out, calibration=tmp_path / "bad.npy")
    assert not out.exists() and not sidecar_path(out).exists()


def test_missing_calibration_and_existing_output(digits_onnx, tmp_path, no_conversion):
    with pytest.raises(CalibrationError, match="needs calibration data"):
        quantize(digits_onnx, tmp_path / "q.tflite")
    (tmp_path / "exists.tflite").write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        quantize(digits_onnx, tmp_path / "exists.tflite", calibration="digits")
    assert (tmp_path / "exists.tflite").read_bytes() == b"keep me"
    with pytest.raises(InputError, match="not found"):
        quantize(tmp_path / "missing.onnx", tmp_path / "q.tflite", calibration="digits")


def test_fewer_samples_warns_then_proceeds(digits_onnx, tmp_path):
    from edgesep.data.digits import load_digits_split
    from edgesep.quantize.calibration import CalibrationWarning

    np.save(tmp_path / "few.npy", load_digits_split().x_train[:20])
    with pytest.warns(CalibrationWarning, match="only 20 sample"):
        result = quantize(digits_onnx, tmp_path / "q.tflite", recipe=QuantRecipe(samples=300), calibration=tmp_path / "few.npy")
    assert result.calibration["samples"] == 20 and not result.held_out and result.eval_samples == 20
    assert result.fidelity.top1_agreement >= 0.95


def test_percentile_activation_ranges_are_applied(digits_onnx, tmp_path, int8_digits):
    from edgesep.quantize.engine import interpreter

    recipe = QuantRecipe(activation_range="percentile")
    result = quantize(digits_onnx, tmp_path / "pct.tflite", recipe=recipe, calibration="digits")

    def scales(model: bytes) -> list[float]:
        runner = interpreter(model)
        return [
            float(runner._get_tensor_details(op["outputs"][0], 0)["quantization"][0])
            for op in runner._get_ops_details()
            if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
        ]

    minmax, percentile = scales(int8_digits.path.read_bytes()), scales(result.path.read_bytes())
    assert len(minmax) == len(percentile) and all(p <= m * (1 + 1e-6) for p, m in zip(percentile, minmax))
    assert any(p < m * 0.99 for p, m in zip(percentile, minmax))  # clipped tails -> finer activation steps
    assert result.recipe.activation_range == "percentile" and result.fidelity.top1_agreement >= 0.98
