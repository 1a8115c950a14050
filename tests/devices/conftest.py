"""Session fixtures for the device tests: tiny .tflite models and an input batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device_models import INPUT_SHAPE, build_tflite


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-models")
    return {"float": build_tflite(folder, int8=False), "int8": build_tflite(folder, int8=True)}


@pytest.fixture(scope="session")
def tiny_inputs() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((6, *INPUT_SHAPE[1:])).astype(np.float32)
