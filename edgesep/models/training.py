"""Seeded, deterministic training of a small classifier on an in-memory split (the digits default)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TrainConfig:
    """How to train: AdamW with a one-cycle schedule, fixed seed and thread count."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 1  # fixed so results do not depend on the machine's core count

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.threads < 1:
            raise ValueError(f"invalid TrainConfig: {self}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    test_accuracy: float
    train_seconds: float
    epochs: int
    final_loss: float

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def evaluate_accuracy(model, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on NCHW float32 ``images``."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(torch.from_numpy(images[start : start + batch_size]))
            correct += int((logits.argmax(1).numpy() == labels[start : start + batch_size]).sum())
    return correct / max(1, len(images))


def train_epoch(model, x_train, generator, *, batch_size: int, optimizer, schedule, batch_loss) -> float:
    """One shuffled pass over ``x_train`` (an optimizer and a per-step schedule step per batch);
    ``batch_loss(outputs, index)`` gives the loss of a batch.  Returns the mean loss per sample."""
    import torch

    model.train()
    order = torch.randperm(len(x_train), generator=generator)
    total = 0.0
    for first in range(0, len(x_train), batch_size):
        index = order[first : first + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(model(x_train[index]), index)
        loss.backward()
        optimizer.step()
        schedule.step()
        total += float(loss.detach()) * len(index)
    return total / len(x_train)


def train_classifier(
    model,
    split,
    *,
    config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[int, float], None] | None = None,
):
    """Train ``model`` in place on ``split`` (x_train/y_train/x_test/y_test arrays); return a TrainResult.

    ``on_epoch(epoch, mean_loss)`` is called after each epoch (progress bars).  The model is left in eval mode.
    """
    import torch
    from torch import nn

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    x_train = torch.from_numpy(np.ascontiguousarray(split.x_train, dtype=np.float32))
    y_train = torch.from_numpy(np.asarray(split.y_train, dtype=np.int64))
    steps_per_epoch = (len(x_train) + config.batch_size - 1) // config.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    start = time.perf_counter()
    mean_loss = float("nan")
    with torch_threads(config.threads):
        for epoch in range(config.epochs):
            mean_loss = train_epoch(
                model, x_train, generator, batch_size=config.batch_size, optimizer=optimizer, schedule=schedule,
                batch_loss=lambda outputs, index: loss_fn(outputs, y_train[index]),
            )  # fmt: skip
            if on_epoch is not None:
                on_epoch(epoch + 1, mean_loss)
        seconds = time.perf_counter() - start
        accuracy = evaluate_accuracy(model, split.x_test, split.y_test)
    return TrainResult(test_accuracy=accuracy, train_seconds=seconds, epochs=config.epochs, final_loss=mean_loss)
