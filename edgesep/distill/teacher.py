"""A standard-convolution teacher CNN for the digits default, trained and cached like the student.

``load_default_teacher()`` trains it once (seeded; width 64: ~50x the SepCNN's MACs) and keeps
``$EDGESEP_CACHE/models/teacher-digits.pt`` (atomic write, loaded back with ``weights_only=True``).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgesep.cache import cache_dir
from edgesep.data.digits import load_digits_split
from edgesep.fileio import atomic_path
from edgesep.models.training import TrainConfig, train_classifier

TEACHER_FACTORY = "edgesep.distill.teacher:load_default_teacher"
TEACHER_TRAIN_CONFIG = TrainConfig(epochs=12, batch_size=64, lr=0.005, seed=0)
CHECKPOINT_NAME = "teacher-digits.pt"


class StandardCNN(nn.Module):
    """Three standard 3x3 conv + BN + ReLU stages (two with stride 2), global pool, linear head."""

    def __init__(self, *, in_channels: int = 1, input_size: int = 16, num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        self.input_shape = (1, in_channels, input_size, input_size)
        stages = []
        channels = in_channels
        for out_channels, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            stages += [
                nn.Conv2d(channels, out_channels, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def digits_teacher(**kwargs) -> StandardCNN:
    """Factory ``edgesep.distill.teacher:digits_teacher`` (random weights)."""
    return StandardCNN(**kwargs)


def teacher_checkpoint_path() -> Path:
    return cache_dir() / "models" / CHECKPOINT_NAME


def train_teacher(*, config: TrainConfig = TEACHER_TRAIN_CONFIG):
    """A seeded StandardCNN trained on the fixed digits split; returns (model, TrainResult)."""
    import torch

    torch.manual_seed(config.seed)
    model = digits_teacher()
    return model, train_classifier(model, load_digits_split(), config=config)


def load_default_teacher(*, retrain: bool = False) -> StandardCNN:
    """The trained digits teacher (eval mode), from the cache or trained and cached now."""
    import torch

    path = teacher_checkpoint_path()
    if path.is_file() and not retrain:
        try:
            model = digits_teacher()
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
            return model.eval()
        except Exception:  # a stale or corrupt cache entry is rebuilt, never trusted
            pass
    model, result = train_teacher()
    meta = {"model": "edgesep.distill.teacher:digits_teacher", "dataset": "digits",
            "train": TEACHER_TRAIN_CONFIG.to_dict(), "result": result.to_dict()}  # fmt: skip
    with atomic_path(path, force=True) as tmp:
        torch.save({"state_dict": model.state_dict(), "meta": meta}, tmp)
    return model.eval()
