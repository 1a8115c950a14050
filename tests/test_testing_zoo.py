"""The evaluation images of the real-model benches (edgesep.testing.zoo): seeded, on the 8-bit grid, with text."""

from __future__ import annotations

import numpy as np
import pytest


def test_text_scenes_are_seeded_photos_with_printed_words():
    pytest.importorskip("skimage")
    from edgesep.testing.zoo import photo_crops, text_scenes

    scenes = text_scenes(160, 224, 3, seed=4)
    assert scenes.shape == (3, 3, 160, 224) and scenes.dtype == np.float32
    assert np.array_equal(scenes, text_scenes(160, 224, 3, seed=4))  # seeded
    assert np.allclose(scenes * 255, np.round(scenes * 255), atol=1e-4)  # 8-bit pixels, as a camera gives
    changed = np.abs(scenes - photo_crops(160, 224, 3, seed=4)).max(axis=1) > 0.2  # labels and letters
    assert all(0.02 < float(c.mean()) < 0.9 for c in changed)


def test_word_crops_are_seeded_text_lines_padded_with_mid_gray_and_some_turned():
    from edgesep.testing.zoo import word_crops

    crops = word_crops(48, 320, 8, seed=3, flipped=0.5)
    assert crops.shape == (8, 3, 48, 320) and crops.dtype == np.float32
    assert np.array_equal(crops, word_crops(48, 320, 8, seed=3, flipped=0.5))
    assert np.allclose(crops * 255, np.round(crops * 255), atol=1e-4)
    padded = np.all(np.abs(crops[:, :, :, -1] - 128 / 255) < 1e-6, axis=(1, 2))  # mid-gray: 0 after normalization
    assert padded.sum() >= 4  # the short lines (long ones fill the width)
    assert all(float(c.std()) > 0.1 for c in crops)  # ink on a label
    # the same words turned 180 degrees: the flipped crops of the same seed differ from the upright ones
    assert 0 < sum(not np.array_equal(a, b) for a, b in zip(crops, word_crops(48, 320, 8, seed=3))) < 8


def test_document_pages_and_lfw_crops():
    pytest.importorskip("skimage")
    from edgesep.testing.zoo import document_pages, lfw_crops

    pages = document_pages(400, 304, 2, seed=1)
    assert pages.shape == (2, 3, 400, 304) and np.array_equal(pages, document_pages(400, 304, 2, seed=1))
    assert all(0.5 < float(p.mean()) < 0.97 for p in pages)  # a light page with dark print and a figure
    crops, faces = lfw_crops(48)
    assert crops.shape == (200, 3, 48, 48) and faces.sum() == 100 and faces[:100].all()
    assert crops.min() >= 0.0 and crops.max() <= 1.0
