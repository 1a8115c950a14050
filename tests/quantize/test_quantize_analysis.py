"""Per-layer analysis (worst first), keep-float layers and auto-fallback of the worst layers."""

from __future__ import annotations

import numpy as np
import pytest

from edgesep.errors import ConfigError
from edgesep.quantize import QuantRecipe, quantize
from edgesep.quantize.analysis import LayerError, worst_layers


@pytest.fixture(scope="module")
def fallback_digits(digits_onnx, tmp_path_factory):
    """Per-tensor int8 (larger errors than per-channel) with the worst layer kept in float."""
    out = tmp_path_factory.mktemp("fb") / "fallback.tflite"
    recipe = QuantRecipe(per_channel=False, samples=200)
    return quantize(digits_onnx, out, recipe=recipe, calibration="digits", auto_fallback=1, holdout=150)


def test_layers_are_sorted_worst_first_with_sane_numbers(fallback_digits):
    layers = fallback_digits.layers
    assert len(layers) >= 8
    errors = [layer.relative_rmse for layer in layers]
    assert errors == sorted(errors, reverse=True)
    weighted = [layer for layer in layers if layer.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(weighted) >= 7
    for layer in weighted:
        # one int8 step is 1/255 of the range: a layer's own error is a fraction of a few steps
        assert 0.0 < layer.relative_rmse < 0.02, layer
        assert layer.snr_db > 20.0, layer
        assert layer.max_abs <= layer.value_range


def test_auto_fallback_keeps_the_worst_layer_in_float_and_is_not_worse(fallback_digits):
    result = fallback_digits
    worst = worst_layers(result.layers, 1)
    assert result.recipe.keep_float == worst
    names = [variant.name for variant in result.variants]
    assert names == ["float32", "int8", "int8+float(1)"]
    full, mixed = result.variants[1], result.variants[2]
    assert mixed.fidelity.top1_agreement >= full.fidelity.top1_agreement
    assert mixed.fidelity.cosine >= full.fidelity.cosine
    assert full.size_bytes < mixed.size_bytes < result.variants[0].size_bytes
    assert result.fidelity == mixed.fidelity and result.size_bytes == mixed.size_bytes


def test_keep_float_layer_really_runs_in_float(fallback_digits, digits_onnx, tmp_path):
    from edgesep.quantize.engine import interpreter

    target = next(layer for layer in fallback_digits.layers if layer.op == "DEPTHWISE_CONV_2D")
    result = quantize(
        digits_onnx, tmp_path / "kf.tflite", recipe=QuantRecipe(samples=100, keep_float=(target.name,)), calibration="digits", holdout=50
    )
    runner = interpreter(result.path.read_bytes())
    kinds = {}
    for op in runner._get_ops_details():
        if op["op_name"] == "DEPTHWISE_CONV_2D":
            name = runner._get_tensor_details(op["outputs"][0], 0)["name"]
            kinds[name] = np.dtype(runner._get_tensor_details(op["inputs"][1], 0)["dtype"]).name
    assert kinds[target.name] == "float32"
    assert sorted(set(kinds.values())) == ["float32", "int8"]
    assert result.kernel_dtypes["DEPTHWISE_CONV_2D"] == "float32,int8"
    assert result.fidelity.top1_agreement >= 0.98


def test_unknown_keep_float_layer_is_a_config_error(digits_onnx, tmp_path):
    with pytest.raises(ConfigError, match="unknown layer"):
        quantize(
            digits_onnx,
            tmp_path / "x.tflite",
            recipe=QuantRecipe(samples=20, keep_float=("no_such_layer",)),
            calibration="digits",
            holdout=0,
        )
    assert not (tmp_path / "x.tflite").exists()


def test_worst_layers_skips_data_movement_and_excluded():
    def layer(name, op, error):
        return LayerError(name=name, op=op, relative_rmse=error, snr_db=30.0, rmse=error, max_abs=error, value_range=1.0)

    layers = (layer("pad", "PAD", 0.5), layer("a", "CONV_2D", 0.4), layer("b", "FULLY_CONNECTED", 0.3), layer("c", "ADD", 0.1))
    assert worst_layers(layers, 2) == ("a", "b")
    assert worst_layers(layers, 2, exclude=("a",)) == ("b", "c")
    assert worst_layers(layers, 0) == ()
