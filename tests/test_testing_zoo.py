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
