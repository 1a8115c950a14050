"""Fixtures for the converter tests: build small seeded ONNX graphs and check them against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from convert_helpers import convert_in_memory, make_model  # noqa: E402,F401  (re-exported for fixtures)


@pytest.fixture(scope="session")
def rng_weights():
    def weights(*shape, seed: int = 0, scale: float = 0.5) -> np.ndarray:
        return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)

    return weights


@pytest.fixture(scope="session")
def sepcnn_onnx(tmp_path_factory) -> Path:
    """The reference SepCNN (random seeded weights) exported to ONNX by edgesep.export."""
    import torch

    from edgesep.export import export
    from edgesep.models.sepcnn import sepcnn

    torch.manual_seed(0)
    model = sepcnn().eval()
    path = tmp_path_factory.mktemp("sepcnn") / "sepcnn.onnx"
    export(model, path, input_shape=(1, 1, 16, 16))
    return path
