"""MobileNetV1- and MobileNetV2-style builders with width multiplier and input size.

Channel counts are rounded to multiples of 8 as in torchvision, so ``mobilenet_v2()`` has exactly the
parameters of ``torchvision.models.mobilenet_v2()``.
"""

from __future__ import annotations

from torch import nn

from edgesep.models.blocks import ConvBNAct, DepthwiseSeparableConv2d, make_divisible

# (out_channels, stride) of MobileNetV1's 13 separable blocks at width 1.
V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip
# (expansion t, out_channels c, repeats n, first stride s) of MobileNetV2.
V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


class MobileNetV1(nn.Module):
    """Stem 3x3/2 conv, 13 depthwise-separable blocks, global average pool, linear classifier."""

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        input_size: int = 224,
        num_classes: int = 1000,
        in_channels: int = 3,
        activation: str | None = "relu6",
    ) -> None:
        super().__init__()
        self.input_shape = (1, in_channels, input_size, input_size)
        channels = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, stride=2, activation=activation)]
        for out_channels, stride in V1_BLOCKS:
            out_channels = make_divisible(out_channels * width_mult)
            layers.append(DepthwiseSeparableConv2d(channels, out_channels, stride=stride, activation=activation))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class InvertedResidual(nn.Module):
    """1x1 expansion (ReLU6) -> depthwise 3x3 (ReLU6) -> linear 1x1 projection, residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = ConvBNAct(in_channels, hidden, kernel_size=1, activation="relu6") if expand_ratio != 1 else nn.Identity()
        self.separable = DepthwiseSeparableConv2d(hidden, out_channels, stride=stride, activation="relu6", pointwise_activation=False)

    def forward(self, x):
        out = self.separable(self.expand(x))
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2: inverted residuals with linear bottlenecks, ReLU6, dropout 0.2 before the classifier."""

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        input_size: int = 224,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.input_shape = (1, in_channels, input_size, input_size)
        channels = make_divisible(32 * width_mult)
        last_channels = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, stride=2, activation="relu6")]
        for t, c, n, s in V2_SETTINGS:
            out_channels = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out_channels, stride=s if i == 0 else 1, expand_ratio=t))
                channels = out_channels
        layers.append(ConvBNAct(channels, last_channels, kernel_size=1, activation="relu6"))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        _init_weights(self)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def _init_weights(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def mobilenet_v1(*, width_mult: float = 1.0, input_size: int = 224, num_classes: int = 1000, in_channels: int = 3) -> MobileNetV1:
    """Factory for ``edgesep.models.mobilenet:mobilenet_v1`` (random weights)."""
    return MobileNetV1(width_mult=width_mult, input_size=input_size, num_classes=num_classes, in_channels=in_channels)


def mobilenet_v2(*, width_mult: float = 1.0, input_size: int = 224, num_classes: int = 1000, in_channels: int = 3) -> MobileNetV2:
    """Factory for ``edgesep.models.mobilenet:mobilenet_v2`` (random weights)."""
    return MobileNetV2(width_mult=width_mult, input_size=input_size, num_classes=num_classes, in_channels=in_channels)
