"""Quantization-aware fine-tuning (qat.py): its fake int8 is TFLite's int8, and it helps the digits SepCNN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.errors import ConfigError, InputError
from edgesep.quantize.recipe import QuantRecipe


def _tflite_layout(weight, groups: int):
    """A PyTorch Conv2d/Linear weight (or int8 codes) in TFLite's layout: OHWI, depthwise 1HWC, FC (O, I)."""
    if weight.dim() == 2:
        return weight
    return weight.permute(1, 2, 3, 0) if groups > 1 else weight.permute(0, 2, 3, 1)


@pytest.mark.parametrize("per_channel", [True, False])
def test_fake_quantized_weights_are_the_int8_weights_tflite_writes(digits_onnx, tmp_path, per_channel):
    import torch

    from edgesep.models.default import load_default_model
    from edgesep.quantize import quantize
    from edgesep.quantize.engine import interpreter
    from edgesep.quantize.equalize import fold_batch_norm
    from edgesep.quantize.qat import fake_quantize_weight, weight_scale

    out = tmp_path / "q.tflite"
    quantize(digits_onnx, out, recipe=QuantRecipe(samples=32, per_channel=per_channel), calibration="digits", holdout=8)
    model = interpreter(out.read_bytes())
    written = {}  # int8 weight tensors by shape (unique in the SepCNN)
    for detail in model.get_tensor_details():
        if detail["dtype"] == np.int8 and len(detail["shape"]) in (2, 4):
            try:
                written[tuple(detail["shape"])] = (model.get_tensor(detail["index"]), detail["quantization_parameters"]["scales"])
            except ValueError:  # an activation tensor: not readable after invoke-free allocation
                continue
    folded, _, _ = fold_batch_norm(load_default_model())  # the ONNX export folds BN the same way
    layers = [m for m in folded.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 8
    for layer in layers:
        weight = layer.weight.detach()
        groups = getattr(layer, "groups", 1)
        codes, scales = written[tuple(_tflite_layout(weight, groups).shape)]
        scale = weight_scale(weight, per_channel=per_channel)
        assert len(scales) == (weight.shape[0] if per_channel else 1)
        np.testing.assert_allclose(scales, scale.numpy(), rtol=1e-6)
        ours = fake_quantize_weight(weight, per_channel=per_channel) / scale.reshape(-1, *[1] * (weight.dim() - 1))
        ours = _tflite_layout(ours.round(), groups).numpy().astype(np.int32)
        assert ours.min() >= -127 and ours.max() <= 127
        np.testing.assert_array_equal(ours, codes.astype(np.int32))  # bit-exact, every channel


def test_activation_grid_is_tflite_asymmetric_int8():
    from edgesep.quantize.qat import activation_grid

    scale, zero = activation_grid(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255) and zero == round(-128 + 1.0 / scale) == -64
    assert activation_grid(0.5, 2.0) == (pytest.approx(2.0 / 255), -128)  # the range is widened to hold 0
    assert activation_grid(-2.0, -0.5) == (pytest.approx(2.0 / 255), 127)


def test_fine_tune_simulates_tflite_points_and_returns_a_plain_folded_model():
    import torch

    from edgesep.data.digits import load_digits_split
    from edgesep.models.default import load_default_model
    from edgesep.quantize.equalize import fold_batch_norm
    from edgesep.quantize.qat import QatConfig, fine_tune

    model = load_default_model()
    data = load_digits_split().x_train[:96]
    config = QatConfig(epochs=1, per_channel=False)
    tuned, report = fine_tune(model, data, config=config)
    again, _ = fine_tune(model, data, config=config)
    # input, 7 conv+ReLU (fused: one point each), the pool and the classifier output
    assert (report.weights, report.activations, report.samples) == (8, 10, 96)
    assert report.kept and report.loss_after < 0.8 * report.loss_before
    folded, _, _ = fold_batch_norm(model)
    tuned_state, folded_state, again_state = tuned.state_dict(), folded.state_dict(), again.state_dict()
    assert sorted(tuned_state) == sorted(folded_state)  # no fake-quant left, same layers
    moved = max(float((tuned_state[k] - folded_state[k]).abs().max()) for k in folded_state)
    assert 0 < moved < 0.05
    assert all(torch.equal(tuned_state[k], again_state[k]) for k in tuned_state)  # seeded
    with pytest.raises(ConfigError):
        QatConfig(lr=0)


def test_recipe_qat_epochs_round_trips_and_needs_the_torch_model():
    assert QuantRecipe(qat_epochs=3).needs_torch_model and not QuantRecipe().needs_torch_model
    assert QuantRecipe.from_dict(QuantRecipe(qat_epochs=3).to_dict()).qat_epochs == 3
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="qat_epochs"):
            QuantRecipe(qat_epochs=bad)


def test_qat_without_the_pytorch_model_is_an_input_error(digits_onnx, tmp_path, capsys):
    from edgesep.cli.main import main
    from edgesep.quantize import quantize

    with pytest.raises(InputError, match="qat_epochs act on the PyTorch model"):
        quantize(digits_onnx, tmp_path / "q.tflite", recipe=QuantRecipe(qat_epochs=2), calibration="digits")
    args = ["quantize", str(digits_onnx), "-o", str(tmp_path / "q.tflite"), "--calib", "digits", "--qat-epochs", "2"]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgesep: error: ")]
    assert len(errors) == 1 and "qat_epochs act on the PyTorch model" in errors[0] and "--torch-model" in errors[0]
    assert main([*args[:-1], "-1", "--torch-model", "default"]) == 2
    assert "qat_epochs must be a whole number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "q.tflite").exists()


def _accuracy(path, split) -> float:
    from edgesep.runners.tflite import run_tflite

    x = np.ascontiguousarray(split.x_test.transpose(0, 2, 3, 1))
    logits = run_tflite(path.read_bytes(), [[x[i : i + 1]] for i in range(len(x))]).outputs[0]
    return float(np.mean(logits.argmax(1) == split.y_test))


def test_qat_per_tensor_digits_closer_to_float_same_graph(digits_onnx, tmp_path, capsys):
    from edgesep.cli.main import main
    from edgesep.convert.tflite_inspect import delegation
    from edgesep.data.digits import load_digits_split
    from edgesep.quantize import quantize

    ptq = quantize(digits_onnx, tmp_path / "ptq.tflite", recipe=QuantRecipe(per_channel=False), calibration="digits")
    out = tmp_path / "qat.tflite"
    args = ["quantize", str(digits_onnx), "-o", str(out), "--calib", "digits", "--per-tensor", "--qat-epochs", "3"]
    assert main([*args, "--torch-model", "default", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    qat = payload["prepared"]["qat"]
    assert payload["recipe"]["qat_epochs"] == 3 and qat["epochs"] == 3 and qat["samples"] == 300 and qat["kept"]
    assert qat["loss_after"] < 0.6 * qat["loss_before"]  # measured 0.00121 -> 0.00043 (epoch 3)
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["quantization"]["prepared"]["qat"]["loss_after"] == qat["loss_after"]
    # held-out agreement with float32 TFLite: 100% both; cosine 0.99957 (PTQ) -> 0.99981 (QAT)
    assert payload["fidelity"]["top1_agreement"] == 1.0 and ptq.fidelity.top1_agreement == 1.0
    assert payload["fidelity"]["cosine"] > ptq.fidelity.cosine + 1e-4
    split = load_digits_split()
    assert _accuracy(out, split) >= _accuracy(ptq.path, split) >= 0.99  # float: 99.44%
    assert payload["kernel_dtypes"] == ptq.kernel_dtypes and payload["size_bytes"] == ptq.size_bytes
    assert delegation(out).partitions == delegation(ptq.path).partitions == 1
