"""Seeded random inputs for verification steps."""

from __future__ import annotations

import numpy as np


def random_inputs(shape: tuple[int, ...], *, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Standard-normal inputs, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype)
