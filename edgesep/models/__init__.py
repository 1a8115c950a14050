"""Depthwise-separable building blocks, reference networks, parameter/MAC accounting, the digits default.

Submodules import torch; this package itself stays light (``edgesep.models.loading`` is imported by CLI
modules), so the public names below are resolved lazily.
"""

from __future__ import annotations

_EXPORTS = {
    "DepthwiseSeparableConv2d": "edgesep.models.blocks",
    "make_activation": "edgesep.models.blocks",
    "SepCNN": "edgesep.models.sepcnn",
    "sepcnn": "edgesep.models.sepcnn",
    "MobileNetV1": "edgesep.models.mobilenet",
    "MobileNetV2": "edgesep.models.mobilenet",
    "mobilenet_v1": "edgesep.models.mobilenet",
    "mobilenet_v2": "edgesep.models.mobilenet",
    "load_default_model": "edgesep.models.default",
    "DEFAULT_FACTORY": "edgesep.models.default",
    "count_model": "edgesep.models.accounting",
    "ModelAccounting": "edgesep.models.accounting",
    "TrainConfig": "edgesep.models.training",
    "train_classifier": "edgesep.models.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgesep.models' has no attribute {name!r}")
