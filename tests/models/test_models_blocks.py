"""Shapes, block structure and exact parameter counts of the reference models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgesep.models.blocks import DepthwiseSeparableConv2d, make_divisible
from edgesep.models.mobilenet import MobileNetV2, mobilenet_v1, mobilenet_v2
from edgesep.models.sepcnn import SepCNN, sepcnn


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("activation, kind", [("relu", nn.ReLU), ("relu6", nn.ReLU6), ("hardswish", nn.Hardswish)])
def test_block_structure_and_params(activation, kind):
    block = DepthwiseSeparableConv2d(8, 24, kernel_size=5, stride=2, activation=activation)
    assert block.depthwise.groups == 8 and block.depthwise.kernel_size == (5, 5)
    assert block.depthwise.out_channels == 8 and block.depthwise.bias is None
    assert block.pointwise.groups == 1 and block.pointwise.kernel_size == (1, 1)
    assert isinstance(block.depthwise_act, kind) and isinstance(block.pointwise_act, kind)
    # K^2*C + 2C (BN) + C*M + 2M (BN)
    assert count(block) == 25 * 8 + 2 * 8 + 8 * 24 + 2 * 24
    out = block.eval()(torch.zeros(1, 8, 15, 15))
    assert out.shape == (1, 24, 8, 8)


def test_block_without_bn_has_biases_and_linear_options():
    block = DepthwiseSeparableConv2d(4, 6, activation=None, batch_norm=False, dilation=2)
    assert count(block) == 9 * 4 + 4 + 4 * 6 + 6
    assert isinstance(block.depthwise_bn, nn.Identity) and isinstance(block.pointwise_act, nn.Identity)
    assert block(torch.zeros(1, 4, 10, 10)).shape == (1, 6, 10, 10)
    linear = DepthwiseSeparableConv2d(4, 6, activation="relu6", pointwise_activation=False)
    assert isinstance(linear.depthwise_act, nn.ReLU6) and isinstance(linear.pointwise_act, nn.Identity)
    with pytest.raises(ValueError, match="unknown activation"):
        DepthwiseSeparableConv2d(4, 6, activation="gelu")


def test_block_matches_grouped_conv_math():
    torch.manual_seed(0)
    block = DepthwiseSeparableConv2d(3, 5, activation=None, batch_norm=False).eval()
    x = torch.randn(2, 3, 7, 7)
    dw = torch.nn.functional.conv2d(x, block.depthwise.weight, block.depthwise.bias, padding=1, groups=3)
    ref = torch.nn.functional.conv2d(dw, block.pointwise.weight, block.pointwise.bias)
    assert torch.max(torch.abs(block(x) - ref)).item() < 1e-6


def test_sepcnn_default_shape_and_params():
    model = sepcnn().eval()
    assert model.input_shape == (1, 1, 16, 16)
    assert model(torch.zeros(3, 1, 16, 16)).shape == (3, 10)
    # stem 9*1*16+32, blocks 16->32, 32->64, 64->64 (K^2 C + 2C + C M + 2M), linear 64*10+10
    expected = (9 * 16 + 32) + sum(9 * c + 2 * c + c * m + 2 * m for c, m in [(16, 32), (32, 64), (64, 64)]) + 650
    assert count(model) == expected == 9034
    separable = [m for m in model.modules() if isinstance(m, DepthwiseSeparableConv2d)]
    assert [b.stride for b in separable] == [2, 2, 1]


def test_sepcnn_options():
    model = SepCNN(in_channels=3, input_size=32, num_classes=5, width_mult=2.0).eval()
    assert model.input_shape == (1, 3, 32, 32)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)
    assert model.classifier.in_features == 128


def test_make_divisible_follows_torchvision():
    assert [make_divisible(v) for v in (32 * 0.35, 16 * 0.35, 96 * 0.75, 1280)] == [16, 8, 72, 1280]


def test_mobilenet_v1_params_and_shape():
    model = mobilenet_v1()
    assert count(model) == 4_231_976
    assert sum(isinstance(m, DepthwiseSeparableConv2d) for m in model.modules()) == 13
    small = mobilenet_v1(width_mult=0.25, input_size=64, num_classes=7, in_channels=1).eval()
    assert small.input_shape == (1, 1, 64, 64)
    assert small(torch.zeros(1, 1, 64, 64)).shape == (1, 7)


@pytest.mark.parametrize("width", [1.0, 0.5, 0.35])
def test_mobilenet_v2_matches_torchvision_param_count(width):
    torchvision = pytest.importorskip("torchvision")
    assert count(mobilenet_v2(width_mult=width)) == count(torchvision.models.mobilenet_v2(width_mult=width))


def test_mobilenet_v2_structure_and_shape():
    model = MobileNetV2(width_mult=0.35, input_size=96, num_classes=3).eval()
    assert model.input_shape == (1, 3, 96, 96)
    assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 3)
    blocks = [m for m in model.modules() if isinstance(m, DepthwiseSeparableConv2d)]
    assert len(blocks) == 17
    assert all(isinstance(b.pointwise_act, nn.Identity) and isinstance(b.depthwise_act, nn.ReLU6) for b in blocks)
