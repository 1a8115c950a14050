"""Shared fixtures for the quantize tests: sample images written as files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "motorcycle_left", "page")


def _sample_images() -> list[np.ndarray]:
    import skimage.data

    images = []
    for name in SAMPLE_IMAGES:
        try:
            images.append(np.asarray(getattr(skimage.data, name)()))
        except Exception:  # an image that would need a download is left out
            continue
    return images


@pytest.fixture(scope="session")
def sample_images() -> list[np.ndarray]:
    images = _sample_images()
    assert len(images) >= 4
    return images


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory, sample_images) -> Path:
    """scikit-image sample images as .png/.jpg files (four crops each, so there are >= 24 files)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    count = 0
    for i, image in enumerate(sample_images):
        h, w = image.shape[:2]
        for j, (top, left) in enumerate([(0, 0), (h // 4, w // 4), (h // 2, w // 2), (0, w // 2)]):
            crop = image[top : top + h // 2, left : left + w // 2]
            suffix = ".png" if (i + j) % 2 else ".jpg"
            Image.fromarray(crop).convert("RGB").save(folder / f"img{count:03d}{suffix}")
            count += 1
    return folder
