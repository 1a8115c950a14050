"""A small seeded classifier training loop (fine-tuning after pruning) and accuracy."""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch ops on ``threads`` intra-op threads, restoring the setting afterwards.

    Tiny CNNs train fastest on one thread; on a busy machine more threads oversubscribe the cores
    (measured 25x slower per step on 2 loaded cores).
    """
    import torch

    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def accuracy(model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on NCHW float32 ``x`` with integer labels ``y``."""
    import torch

    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])))
            correct += int((logits.argmax(dim=1).numpy() == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, len(x))


def finetune(
    model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    desc: str = "fine-tune",
    threads: int | None = 1,
) -> list[float]:
    """Train ``model`` with Adam + cross-entropy for ``epochs``; returns the mean loss of each epoch."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    losses: list[float] = []
    model.train()
    with torch_threads(threads):
        for _ in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(inputs[index]), labels[index])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(index)
            losses.append(total / len(order))
    model.eval()
    return losses
