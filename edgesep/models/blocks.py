"""The depthwise-separable convolution block: depthwise KxK (groups=C) then pointwise 1x1."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = ("relu", "relu6", "hardswish")


def make_activation(name: str | None) -> nn.Module:
    """``"relu"`` / ``"relu6"`` / ``"hardswish"`` -> module; ``None`` -> Identity."""
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "hardswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)} or None")


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    return dilation * (kernel_size - 1) // 2


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise KxK conv (groups=in_channels) [+BN +act], then pointwise 1x1 conv [+BN +act].

    Convolutions carry a bias only when ``batch_norm`` is off.  ``depthwise_activation`` /
    ``pointwise_activation`` switch the activation after each half (MobileNetV2's projection is linear).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activation: str | None = "relu",
        depthwise_activation: bool = True,
        pointwise_activation: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, dilation),
            dilation=dilation,
            groups=in_channels,
            bias=not batch_norm,
        )
        self.depthwise_bn = nn.BatchNorm2d(in_channels) if batch_norm else nn.Identity()
        self.depthwise_act = make_activation(activation if depthwise_activation else None)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=not batch_norm)
        self.pointwise_bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.pointwise_act = make_activation(activation if pointwise_activation else None)

    def forward(self, x):
        x = self.depthwise_act(self.depthwise_bn(self.depthwise(x)))
        return self.pointwise_act(self.pointwise_bn(self.pointwise(x)))


class ConvBNAct(nn.Sequential):
    """A standard KxK conv + BN + activation (stems and 1x1 expansions)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        activation: str | None = "relu",
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=same_padding(kernel_size), bias=False),
            nn.BatchNorm2d(out_channels),
            make_activation(activation),
        )


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10% (torchvision's rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
