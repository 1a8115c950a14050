"""Seeded inputs for verification steps when the user gives no data of their own.

Uniform noise is a poor probe of a trained vision model: a text detector's output on noise is ~0 everywhere, so
a right conversion can fail a relative check and a wrong one can pass. :func:`image_like_inputs` draws what a
camera or scanner produces instead: smooth shading, flat regions with sharp edges, and rows of thin dark
strokes (text), normalized like ImageNet inputs.
"""

from __future__ import annotations

import numpy as np

IMAGE_CHANNELS = (1, 3, 4)
NORMALIZE_MEAN = 0.45
NORMALIZE_STD = 0.25


def random_inputs(shape: tuple[int, ...], *, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Standard-normal inputs, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype)


def looks_like_image(shape: tuple[int, ...]) -> bool:
    """NCHW with 1, 3 or 4 channels and at least 8x8 pixels."""
    return len(shape) == 4 and shape[1] in IMAGE_CHANNELS and shape[2] >= 8 and shape[3] >= 8


def image_like_inputs(shape: tuple[int, ...], *, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """NCHW images (see module doc), normalized to about zero mean and unit spread; other shapes get
    :func:`random_inputs`."""
    if not looks_like_image(shape):
        return random_inputs(shape, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    batch, channels, height, width = shape
    images = np.stack([_image(rng, channels, height, width) for _ in range(batch)])
    return ((images - NORMALIZE_MEAN) / NORMALIZE_STD).astype(dtype)


def _image(rng: np.random.Generator, channels: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= max(1, height - 1)
    x /= max(1, width - 1)
    color = rng.uniform(0.2, 0.8, size=(channels, 1, 1)).astype(np.float32)
    slope = rng.uniform(-0.3, 0.3, size=(channels, 2, 1, 1)).astype(np.float32)
    image = color + slope[:, 0] * y + slope[:, 1] * x
    for _ in range(int(rng.integers(2, 6))):  # flat regions with sharp edges
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        bottom = min(height, top + int(rng.integers(height // 8 + 1, height // 2 + 2)))
        right = min(width, left + int(rng.integers(width // 8 + 1, width // 2 + 2)))
        image[:, top:bottom, left:right] = rng.uniform(0.0, 1.0, size=(channels, 1, 1))
    ink = rng.uniform(0.0, 0.15, size=(channels, 1, 1)).astype(np.float32)
    line_height = max(2, height // 12)
    for _ in range(int(rng.integers(1, 4))):  # rows of text-like strokes on a light band
        top = int(rng.integers(0, max(1, height - line_height)))
        band = slice(top, top + line_height)
        image[:, band, :] = np.maximum(image[:, band, :], 0.85)
        position = int(rng.integers(0, max(1, width // 8)))
        stroke = max(1, line_height // 4)
        while position < width - stroke:
            length = int(rng.integers(stroke, 4 * stroke + 1))
            image[:, top + 1 : top + line_height - 1, position : position + stroke] = ink
            image[:, top + line_height // 2 : top + line_height // 2 + 1, position : position + length] = ink
            position += length + int(rng.integers(stroke, 3 * stroke + 1))
    image += rng.normal(0.0, 0.01, size=image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)
