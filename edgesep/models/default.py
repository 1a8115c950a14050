"""The built-in default: SepCNN trained on scikit-learn's digits, cached as a checkpoint.

``load_default_model()`` is the factory every later step uses (``DEFAULT_FACTORY``).  The first call
trains (about 5 s on one core) and writes ``$EDGESEP_CACHE/models/sepcnn-digits.pt`` (default cache:
``~/.cache/edgesep``) atomically; later calls load it with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgesep.cache import cache_dir
from edgesep.data.digits import load_digits_split
from edgesep.fileio import atomic_path
from edgesep.models.training import TrainConfig, TrainResult, train_classifier

DEFAULT_FACTORY = "edgesep.models.default:load_default_model"
DEFAULT_TRAIN_CONFIG = TrainConfig(epochs=12, batch_size=64, lr=0.01, seed=0)
CHECKPOINT_NAME = "sepcnn-digits.pt"


def default_checkpoint_path() -> Path:
    return cache_dir() / "models" / CHECKPOINT_NAME


def train_default(*, config: TrainConfig = DEFAULT_TRAIN_CONFIG, on_epoch=None):
    """Build a seeded SepCNN and train it on the fixed digits split; return (model, TrainResult)."""
    import torch

    from edgesep.models.sepcnn import sepcnn

    torch.manual_seed(config.seed)
    model = sepcnn()
    result = train_classifier(model, load_digits_split(), config=config, on_epoch=on_epoch)
    return model, result


def save_checkpoint(model, path: str | os.PathLike, *, result: TrainResult, config: TrainConfig, force: bool = False) -> Path:
    """Write ``{"state_dict", "meta"}`` atomically (loadable with ``weights_only=True`` / ``load_weights``)."""
    import torch

    from edgesep import __version__

    meta: dict[str, Any] = {"edgesep_version": __version__, "model": "edgesep.models.sepcnn:sepcnn", "dataset": "digits"}
    meta.update({"train": config.to_dict(), "result": result.to_dict()})
    with atomic_path(path, force=force) as tmp:
        torch.save({"state_dict": model.state_dict(), "meta": meta}, tmp)
    return Path(path)


def _load_cached(path: Path):
    import torch

    from edgesep.models.sepcnn import sepcnn

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = sepcnn()
        model.load_state_dict(checkpoint["state_dict"])
    except Exception:  # a stale or corrupt cache entry is rebuilt, never trusted
        return None
    return model.eval()


def load_default_model(*, retrain: bool = False):
    """The trained digits SepCNN (input (1, 1, 16, 16), 10 classes), in eval mode."""
    path = default_checkpoint_path()
    if path.is_file() and not retrain:
        model = _load_cached(path)
        if model is not None:
            return model
    model, result = train_default()
    save_checkpoint(model, path, result=result, config=DEFAULT_TRAIN_CONFIG, force=True)
    return model.eval()
