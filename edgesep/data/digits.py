"""scikit-learn's bundled 8x8 digits, upsampled for the built-in SepCNN default.

The data ship inside scikit-learn (no download).  Images are returned NCHW,
float32 in [0, 1], upsampled bilinearly to ``size`` x ``size``.  The split is
fixed (stratified, seed 0): 80% train, 20% test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIGITS_SIZE = 16
NUM_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray  # (N, 1, size, size) float32
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray


def _upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (align_corners=False) resize of (N, 8, 8) to (N, size, size), in numpy."""
    n, h, w = images.shape
    if size == h:
        return images
    coords = (np.arange(size) + 0.5) * (h / size) - 0.5
    coords = np.clip(coords, 0, h - 1)
    lo = np.floor(coords).astype(int)
    hi = np.minimum(lo + 1, h - 1)
    frac = (coords - lo).astype(np.float32)
    rows = images[:, lo, :] * (1 - frac)[None, :, None] + images[:, hi, :] * frac[None, :, None]
    out = rows[:, :, lo] * (1 - frac)[None, None, :] + rows[:, :, hi] * frac[None, None, :]
    return out.astype(np.float32)


def load_digits_split(*, size: int = DIGITS_SIZE, test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    images = _upsample(images, size)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=test_fraction, random_state=seed, stratify=labels)
    return DigitsSplit(
        x_train=np.ascontiguousarray(x_train),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test,
    )
