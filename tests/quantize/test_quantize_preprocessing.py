"""PreprocessingSpec: resize/crop/channel order/normalization numbers and the dict round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgesep.errors import ConfigError
from edgesep.quantize.preprocessing import PreprocessingSpec


def _gradient(height: int = 40, width: int = 60) -> Image.Image:
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = rows.astype(np.uint8)  # red: vertical gradient
    pixels[..., 2] = 200  # blue constant
    return Image.fromarray(pixels)


def test_stretch_resize_scale_and_normalize():
    spec = PreprocessingSpec(resize=(20, 30), scale=1 / 255, mean=(0.5, 0.0, 0.5), std=(0.5, 1.0, 0.25))
    chw = spec.apply(_gradient())
    assert chw.shape == (3, 20, 30) and chw.dtype == np.float32
    assert np.allclose(chw[1], 0.0)
    assert np.allclose(chw[2], (200 / 255 - 0.5) / 0.25, atol=1e-5)
    assert chw[0, 0, 0] < chw[0, -1, 0]  # gradient kept its direction
    assert chw[0].min() >= -1.0 - 1e-6 and chw[0].max() <= 1.0 + 1e-6


def test_bgr_reverses_channels_and_gray_has_one():
    rgb = PreprocessingSpec(resize=(8, 8)).apply(_gradient())
    bgr = PreprocessingSpec(resize=(8, 8), channel_order="BGR").apply(_gradient())
    np.testing.assert_array_equal(bgr, rgb[::-1])
    gray = PreprocessingSpec(resize=(8, 8), channel_order="GRAY").apply(_gradient())
    assert gray.shape == (1, 8, 8)
    expected = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert np.max(np.abs(gray[0] - expected)) < 2 / 255


def test_shorter_side_then_center_crop_keeps_aspect():
    spec = PreprocessingSpec(resize=(20, 20), resize_mode="shorter_side", center_crop=(20, 20))
    assert spec.output_hw == (20, 20)
    chw = spec.apply(_gradient(40, 60))  # -> 20 x 30, crop the middle 20 x 20
    assert chw.shape == (3, 20, 20)
    assert np.allclose(chw[2], 200 / 255, atol=1e-5)


def test_numpy_input_and_for_input():
    spec = PreprocessingSpec.for_input((1, 1, 16, 16))
    assert spec.channel_order == "GRAY" and spec.resize == (16, 16)
    chw = spec.apply(np.full((32, 32), 255, np.uint8))
    assert chw.shape == (1, 16, 16) and np.allclose(chw, 1.0)


def test_round_trip_through_json_types():
    import json

    spec = PreprocessingSpec(
        resize=(256, 256),
        resize_mode="shorter_side",
        center_crop=(224, 224),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        interpolation="bicubic",
    )
    again = PreprocessingSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channel_order": "RGBA"},
        {"layout": "NHWC"},
        {"resize": (0, 4)},
        {"std": (0.0,)},
        {"mean": (0.1, 0.2)},
        {"channel_order": "GRAY", "mean": (0.1, 0.2, 0.3)},
    ],
)
def test_bad_specs_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        PreprocessingSpec(**kwargs)


def test_unknown_key_and_too_large_crop():
    with pytest.raises(ConfigError, match="unknown preprocessing key"):
        PreprocessingSpec.from_dict({"resize": [4, 4], "flip": True})
    with pytest.raises(ConfigError, match="larger than"):
        PreprocessingSpec(resize=(8, 8), center_crop=(10, 10)).apply(_gradient())
