"""Small seeded PyTorch models used by the export tests (importable as 'file.py:factory')."""

import torch
from torch import nn


class TinySeparable(nn.Module):
    input_shape = (1, 3, 16, 16)

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(3, 3, 3, padding=1, groups=3)
        self.bn1 = nn.BatchNorm2d(3)
        self.pw = nn.Conv2d(3, 8, 1)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.dw(x)))
        x = nn.functional.relu6(self.bn2(self.pw(x)))
        return self.head(x.mean(dim=(2, 3)))


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return TinySeparable()


def not_a_module():
    return {"weights": 1}


def exploding():
    raise ValueError("boom")
