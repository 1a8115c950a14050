"""SepCNN: the small depthwise-separable image classifier used as edgesep's built-in default."""

from __future__ import annotations

from torch import nn

from edgesep.models.blocks import ConvBNAct, DepthwiseSeparableConv2d, make_divisible

# (out_channels, stride) of each separable block after the stem, at width_mult=1.
SEPCNN_BLOCKS: tuple[tuple[int, int], ...] = ((32, 2), (64, 2), (64, 1))
STEM_CHANNELS = 16


class SepCNN(nn.Module):
    """Stem 3x3 conv, separable blocks (two with stride 2), global average pool, linear classifier."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        input_size: int = 16,
        num_classes: int = 10,
        width_mult: float = 1.0,
        activation: str | None = "relu",
        blocks: tuple[tuple[int, int], ...] = SEPCNN_BLOCKS,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        self.input_shape = (1, in_channels, input_size, input_size)
        self.num_classes = num_classes
        channels = make_divisible(STEM_CHANNELS * width_mult)
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, kernel_size=3, activation=activation)]
        for out_channels, stride in blocks:
            out_channels = make_divisible(out_channels * width_mult)
            layers.append(DepthwiseSeparableConv2d(channels, out_channels, stride=stride, activation=activation))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(x)


def sepcnn(**kwargs) -> SepCNN:
    """Factory for ``edgesep.models.sepcnn:sepcnn`` (random weights; see ``default`` for the trained one)."""
    return SepCNN(**kwargs)
