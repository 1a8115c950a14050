"""The recipe's PyTorch half (equalize + bias correction) and its TFLite half (activation ranges)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesep.errors import ConfigError
from edgesep.quantize.recipe import QuantRecipe


def test_recipe_carries_the_separable_options():
    recipe = QuantRecipe(equalize=True, bias_correction="empirical", activation_range="mse", per_channel=False)
    assert QuantRecipe.from_dict(recipe.to_dict()) == recipe
    assert QuantRecipe().equalize is False and QuantRecipe().activation_range == "minmax"
    with pytest.raises(ConfigError):
        QuantRecipe(bias_correction="sometimes")
    with pytest.raises(ConfigError):
        QuantRecipe(activation_range="median")


def test_prepare_for_int8_equalizes_and_corrects():
    torch = pytest.importorskip("torch")
    from edgesep.data.digits import load_digits_split
    from edgesep.models.sepcnn import sepcnn
    from edgesep.quantize.bias_correction import quantize_weights
    from edgesep.quantize.prepare import prepare_for_int8

    data = load_digits_split()
    torch.manual_seed(0)
    model = sepcnn().eval()
    x = torch.from_numpy(data.x_test[:64])
    recipe = QuantRecipe(per_channel=False, equalize=True, bias_correction="empirical")
    prepared = prepare_for_int8(model, recipe, data=data.x_train[:128])
    assert prepared.equalization is not None and len(prepared.equalization.pairs) == 7
    assert prepared.bias_correction is not None and prepared.bias_correction.method == "empirical"
    assert set(prepared.to_dict()) == {"equalization", "bias_correction", "qat"} and prepared.qat is None
    with torch.no_grad():
        reference = model(x)
        naive = (quantize_weights(model, per_channel=False)(x) - reference).abs().mean()
        remedied = (quantize_weights(prepared.model, per_channel=False)(x) - reference).abs().mean()
    assert float(remedied) < 0.5 * float(naive)


@pytest.fixture(scope="module")
def calibrated_model():
    """A calibrated (not yet quantized) float TFLite model: 3 dense layers with ReLU, with rare large inputs."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    w1 = tf.constant(rng.standard_normal((8, 16)).astype(np.float32) * 0.5)
    w2 = tf.constant(rng.standard_normal((16, 16)).astype(np.float32) * 0.3)
    w3 = tf.constant(rng.standard_normal((16, 4)).astype(np.float32) * 0.5)

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def net(x):
        return tf.matmul(tf.nn.relu(tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2)), w3)

    samples = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(200)]
    samples[7] = samples[7] * 25.0  # one outlier sample stretches every min/max range
    converter = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter._experimental_calibrate_only = True  # noqa: SLF001
    return converter.convert(), [[s] for s in samples]


# MSE keeps a 0.5% tail of 10x values: clipping them would cost more squared error than coarser steps.
@pytest.mark.parametrize(("method", "shrink"), [("percentile", 0.6), ("entropy", 0.6), ("mse", 1.0)])
def test_activation_ranges_rewrite_the_calibrated_ranges(calibrated_model, method, shrink):
    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.ranges import RangeConfig

    calibrated, samples = calibrated_model
    rewritten, applied = apply_activation_ranges(calibrated, samples, RangeConfig(method=method, percentile=99.0))
    assert len(applied) >= 2 and rewritten != calibrated
    assert all(a.tightening <= 1.0 + 1e-6 for a in applied)
    assert min(a.tightening for a in applied) < shrink  # the outlier-stretched ranges shrink
    _, measured = apply_activation_ranges(calibrated, samples, RangeConfig(method="minmax"))
    # no ADD/MUL runs in place here, so our min/max pass measures exactly what the calibrator stored
    assert len(measured) == len(applied) and all(abs(a.tightening - 1.0) < 1e-6 for a in measured)


def test_minmax_ranges_are_measured_not_taken_from_in_place_ops():
    """TFLite runs MUL in place over relu6(x + 3) (its only use), and the calibrator logs that input after the MUL ran:
    the stored range is the product's.  The int8 HardSwish form then had one int8 level for 0..6."""
    tf = pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter

    from edgesep.quantize import engine
    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.ranges import RangeConfig

    rng = np.random.default_rng(0)
    weights = tf.constant(rng.standard_normal((3, 3, 4, 8)).astype(np.float32) * 3)
    head = tf.constant(rng.standard_normal((1, 1, 8, 4)).astype(np.float32) * 0.2)

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 4], tf.float32)])
    def net(x):
        y = tf.nn.conv2d(x, weights, 1, "SAME")
        return tf.nn.conv2d(y * tf.nn.relu6(y + 3.0), head, 1, "SAME")  # the product is no graph output

    float_bytes = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net).convert()
    samples = [[rng.standard_normal((1, 8, 8, 4)).astype(np.float32)] for _ in range(16)]
    calibrated = engine.calibrate(float_bytes, lambda: samples)
    _, ranges = apply_activation_ranges(calibrated, samples, RangeConfig(method="minmax"))
    relu6 = next(r for r in ranges if "Relu6" in r.name)
    assert relu6.calibrated[1] > 20.0  # the calibrator's (wrong) range: the product's
    assert relu6.applied[0] == 0.0 and 5.0 < relu6.applied[1] <= 6.0
    rewritten, _ = apply_activation_ranges(calibrated, samples, RangeConfig(method="minmax"))
    runner = Interpreter(model_content=_quantize(rewritten))
    scale = next(d["quantization"][0] for d in runner.get_tensor_details() if "Relu6" in d["name"])
    assert scale == pytest.approx(relu6.applied[1] / 255, rel=1e-5)


def _quantize(model_bytes: bytes) -> bytes:
    from tensorflow.lite.python import convert as tf_convert

    return bytes(tf_convert.mlir_quantize(model_bytes, fully_quantize=True))


def test_the_quantizer_uses_the_rewritten_ranges(calibrated_model):
    from ai_edge_litert.interpreter import Interpreter

    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.ranges import RangeConfig

    calibrated, samples = calibrated_model
    rewritten, applied = apply_activation_ranges(calibrated, samples, RangeConfig(method="percentile", percentile=99.9))
    runner = Interpreter(model_content=_quantize(rewritten))
    scales = [d["quantization"][0] for d in runner.get_tensor_details() if d["quantization"][0]]
    for tensor in applied:
        expected = (tensor.applied[1] - tensor.applied[0]) / 255
        assert min(abs(scale - expected) / expected for scale in scales) < 1e-5, tensor


def test_entropy_ranges_lower_the_int8_error_on_typical_inputs(calibrated_model):
    from ai_edge_litert.interpreter import Interpreter

    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.ranges import RangeConfig

    calibrated, samples = calibrated_model
    typical = [s[0] for i, s in enumerate(samples) if i != 7]

    def outputs(model_bytes: bytes) -> np.ndarray:
        runner = Interpreter(model_content=model_bytes)
        runner.allocate_tensors()
        inp, out = runner.get_input_details()[0], runner.get_output_details()[0]
        rows = []
        for s in typical:
            x = s
            if inp["dtype"] != np.float32:
                scale, zero = inp["quantization"]
                x = np.clip(np.round(s / scale + zero), -128, 127).astype(inp["dtype"])
            runner.set_tensor(inp["index"], x)
            runner.invoke()
            y = runner.get_tensor(out["index"]).astype(np.float32)
            if out["dtype"] != np.float32:
                scale, zero = out["quantization"]
                y = (y - zero) * scale
            rows.append(y)
        return np.concatenate(rows)

    reference = outputs(calibrated)
    tightened, _ = apply_activation_ranges(calibrated, samples, RangeConfig(method="entropy"))
    plain = float(np.mean(np.abs(outputs(_quantize(calibrated)) - reference)))
    better = float(np.mean(np.abs(outputs(_quantize(tightened)) - reference)))
    # measured 0.081 vs 0.093: modest, because the input keeps its outlier-stretched min/max range
    assert better < 0.92 * plain


# quantize(..., model=) runs the PyTorch half on the normal path


@pytest.fixture(scope="module")
def per_tensor_pair(digits_onnx, tmp_path_factory):
    """Per-tensor int8 of the trained digits SepCNN: naive, and with equalization + empirical bias correction."""
    from edgesep.quantize import quantize

    folder = tmp_path_factory.mktemp("prepared")
    naive = quantize(digits_onnx, folder / "naive.tflite", recipe=QuantRecipe(per_channel=False), calibration="digits")
    recipe = QuantRecipe(per_channel=False, equalize=True, bias_correction="empirical")
    remedied = quantize(digits_onnx, folder / "cle_bc.tflite", recipe=recipe, model="default", calibration="digits")
    return naive, remedied


def test_quantize_with_torch_model_equalizes_and_corrects(per_tensor_pair):
    import json

    from edgesep.data.digits import load_digits_split
    from edgesep.fileio import sidecar_path
    from edgesep.runners.tflite import run_tflite

    naive, remedied = per_tensor_pair
    # measured on 100 held-out digits: mean |error| 0.094 -> 0.055, 1 - cosine 4.0e-4 -> 1.5e-4
    assert remedied.fidelity.mean_abs < 0.75 * naive.fidelity.mean_abs, (naive.fidelity, remedied.fidelity)
    assert 1 - remedied.fidelity.cosine < 0.6 * (1 - naive.fidelity.cosine)
    assert remedied.fidelity.top1_agreement == 1.0 and remedied.held_out
    sidecar = json.loads(sidecar_path(remedied.path).read_text())
    assert sidecar["recipe"]["equalize"] is True and sidecar["recipe"]["bias_correction"] == "empirical"
    assert len(sidecar["quantization"]["prepared"]["equalization"]["pairs"]) == 7
    assert sidecar["quantization"]["prepared"]["bias_correction"]["method"] == "empirical"
    assert naive.prepared is None and remedied.kernel_dtypes["DEPTHWISE_CONV_2D"] == "int8"
    split = load_digits_split()
    x = np.ascontiguousarray(split.x_test.transpose(0, 2, 3, 1))
    logits = run_tflite(remedied.path.read_bytes(), [[x[i : i + 1]] for i in range(len(x))]).outputs[0]
    assert float(np.mean(logits.argmax(1) == split.y_test)) >= 0.99  # float: 99.44% (bench/quant_recipes.py)


def test_torch_half_needs_the_pytorch_model(digits_onnx, tmp_path):
    from edgesep.errors import InputError
    from edgesep.quantize import quantize

    recipe = QuantRecipe(per_channel=False, bias_correction="analytic")  # empirical works without it: int8_bias.py
    with pytest.raises(InputError, match="act on the PyTorch model"):
        quantize(digits_onnx, tmp_path / "q.tflite", recipe=recipe, calibration="digits")
    with pytest.raises(ConfigError, match="int8"):
        quantize(digits_onnx, tmp_path / "q.tflite", recipe=QuantRecipe(mode="float16", equalize=True), model="default")
    assert not (tmp_path / "q.tflite").exists()


def test_torch_model_must_be_the_onnx_source(digits_onnx, tmp_path):
    from edgesep.errors import InputError
    from edgesep.quantize import quantize

    recipe = QuantRecipe(equalize=True, samples=16)
    with pytest.raises(InputError, match="not the source"):  # untrained weights: a different function
        quantize(digits_onnx, tmp_path / "q.tflite", recipe=recipe, model="edgesep.models.sepcnn:sepcnn", calibration="digits", holdout=4)
    assert not (tmp_path / "q.tflite").exists()


def test_cli_equalize_and_bias_correction(digits_onnx, tmp_path, capsys):
    import json

    from edgesep.cli.main import main

    out = tmp_path / "cli.tflite"
    args = ["quantize", str(digits_onnx), "-o", str(out), "--calib", "digits", "--per-tensor", "--samples", "100"]
    assert main([*args, "--equalize", "--bias-correction", "analytic"]) == 2  # no --torch-model
    assert "act on the PyTorch model" in capsys.readouterr().err
    assert main([*args, "--torch-weights", str(tmp_path / "w.pt")]) == 2
    capsys.readouterr()
    assert main([*args, "--equalize", "--bias-correction", "analytic", "--torch-model", "default", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["recipe"]["equalize"] is True and payload["recipe"]["bias_correction"] == "analytic"
    assert len(payload["prepared"]["equalization"]["pairs"]) == 7
    assert payload["fidelity"]["top1_agreement"] >= 0.99 and payload["fidelity"]["cosine"] > 0.999


def test_logits_read_by_a_final_softmax_keep_their_full_range():
    """Percentile and MSE ranges clip tails; on the logits of a final softmax that saturates the largest scores to one value and
    argmax picks the lowest tied class (PP-OCRv5 rec: its CTC blank won, spaces vanished). Those logits, and the
    tensors they are reshaped from, keep their measured min/max like a graph output; the rest is still clipped."""
    tf = pytest.importorskip("tensorflow")

    from edgesep.convert.tflite_inspect import read_model
    from edgesep.quantize import engine
    from edgesep.quantize.activation_ranges import apply_activation_ranges, decision_logits
    from edgesep.quantize.ranges import RangeConfig

    rng = np.random.default_rng(0)
    features = tf.constant(rng.standard_normal((3, 3, 4, 8)).astype(np.float32))
    classes = tf.constant(rng.standard_normal((1, 1, 8, 16)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 4], tf.float32)])
    def net(x):
        hidden = tf.nn.relu(tf.nn.conv2d(x, features, 1, "SAME"))
        return tf.nn.softmax(tf.reshape(tf.nn.conv2d(hidden, classes, 1, "SAME"), [1, 64, 16]))

    float_bytes = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()], net).convert()
    samples = [[rng.standard_normal((1, 8, 8, 4)).astype(np.float32)] for _ in range(16)]
    calibrated = engine.calibrate(float_bytes, lambda: samples)
    logits = decision_logits(read_model(calibrated))
    _, clipped = apply_activation_ranges(calibrated, samples, RangeConfig(method="percentile", percentile=99.0))
    _, full = apply_activation_ranges(calibrated, samples, RangeConfig(method="minmax"))
    widths = {r.index: r.applied[1] - r.applied[0] for r in full}
    assert logits and logits <= set(widths)
    for r in clipped:
        if r.index in logits:
            assert r.applied[1] - r.applied[0] == pytest.approx(widths[r.index], rel=1e-6)
    assert any(r.applied[1] - r.applied[0] < 0.9 * widths[r.index] for r in clipped if r.index not in logits)
