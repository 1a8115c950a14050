"""Whole networks (random seeded weights) exported by edgesep.export, converted, and compared with
onnxruntime.  The long list lives in bench/convert_models.py; these are the representative few."""

from __future__ import annotations

import pytest

from edgesep.convert import convert

pytestmark = pytest.mark.slow

# torchvision must be imported before TensorFlow: importing it after TF crashes the process
torchvision = pytest.importorskip("torchvision")


def _export(module, shape, tmp_path):
    from edgesep.export import export

    path = tmp_path / "model.onnx"
    export(module.eval(), path, input_shape=shape)
    return path


def _edgesep_model(name: str, **kwargs):
    import torch

    from edgesep.models import mobilenet

    torch.manual_seed(0)
    return getattr(mobilenet, name)(**kwargs)


def _torchvision_model(name: str, **kwargs):
    import torch

    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None, **kwargs)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_edgesep_mobilenets_convert_exactly_with_no_transposes(name, tmp_path):
    module = _edgesep_model(name, width_mult=0.35, input_size=32, num_classes=10)
    result = convert(_export(module, (1, 3, 32, 32), tmp_path), tmp_path / "model.tflite")
    assert result.fidelity.relative < 1e-4
    assert result.fidelity.top1_agreement == 1.0
    assert result.transposes == 0
    assert result.op_histogram["DEPTHWISE_CONV_2D"] >= 10
    assert not {"RELU", "RELU6"} & set(result.op_histogram)  # activations fused into the convolutions


def test_torchvision_mobilenet_v3_small(tmp_path):
    # hard-swish, hard-sigmoid squeeze-excitation, Flatten + two Linear layers
    module = _torchvision_model("mobilenet_v3_small", num_classes=10)
    result = convert(_export(module, (1, 3, 64, 64), tmp_path), tmp_path / "model.tflite")
    assert result.fidelity.relative < 1e-4
    assert result.transposes == 0
    assert result.op_histogram["HARD_SWISH"] >= 10


def test_torchvision_shufflenet_channel_shuffle_runs_in_one_xnnpack_partition(tmp_path):
    from edgesep.convert.tflite_inspect import delegation

    module = _torchvision_model("shufflenet_v2_x0_5", num_classes=10)
    result = convert(_export(module, (1, 3, 64, 64), tmp_path), tmp_path / "model.tflite")
    assert result.fidelity.relative < 1e-4
    # each of the 16 shuffles is two TRANSPOSEs between RESHAPEs (delegated), never a GATHER (not delegated)
    assert "GATHER" not in result.op_histogram and result.transposes == 32
    runtime = delegation(result.path)
    assert runtime.single_partition, runtime.summary()
