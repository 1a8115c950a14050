"""Validation data loading and layout handling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.errors import InputError, ShapeError
from edgesep.fileio import sidecar_path
from edgesep.validate.data import ModelInput, guess_layout, load_validation_data, model_input, to_model_layout


def _fake_model(tmp_path, *, shape, layout, name="m.tflite"):
    model = tmp_path / name
    model.write_bytes(b"not read when a sidecar exists")
    sidecar = {"format": "tflite", "inputs": [{"name": "input", "shape": list(shape), "dtype": "float32", "layout": layout}]}
    sidecar_path(model).write_text(json.dumps(sidecar))
    return model


def test_guess_layout():
    assert guess_layout((1, 16, 16, 1)) == "NHWC"
    assert guess_layout((1, 224, 224, 3)) == "NHWC"
    assert guess_layout((1, 3, 32, 32)) == "NCHW"
    assert guess_layout((1, 10)) == ""


def test_digits_to_nhwc_from_sidecar(tmp_path):
    model = _fake_model(tmp_path, shape=(1, 16, 16, 1), layout="NHWC")
    data = load_validation_data("digits", model)
    assert data.x.shape == (360, 16, 16, 1) and data.x.dtype == np.float32
    assert data.labels.shape == (360,) and set(np.unique(data.labels)) == set(range(10))
    from edgesep.data.digits import load_digits_split

    expected = load_digits_split().x_test.transpose(0, 2, 3, 1)
    assert np.array_equal(data.x, expected)


def test_digits_size_follows_model_and_samples(tmp_path):
    model = _fake_model(tmp_path, shape=(1, 1, 8, 8), layout="NCHW")
    data = load_validation_data("digits", model, samples=7)
    assert data.x.shape == (7, 1, 8, 8) and data.labels.shape == (7,)
    assert data.x.max() <= 1.0 and data.x.min() >= 0.0


def test_npz_nchw_and_labels_file(tmp_path):
    model = _fake_model(tmp_path, shape=(1, 4, 4, 3), layout="NHWC")
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1]))
    data = load_validation_data(tmp_path / "d.npz", model)
    assert np.array_equal(data.x, x.transpose(0, 2, 3, 1))
    assert data.labels.tolist() == [0, 1]
    np.save(tmp_path / "y.npy", np.array([1, 0]))
    assert load_validation_data(tmp_path / "d.npz", model, labels=tmp_path / "y.npy").labels.tolist() == [1, 0]


def test_data_already_in_model_layout_is_kept():
    target = ModelInput(shape=(1, 4, 4, 3), layout="NHWC")
    x = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32)
    assert np.array_equal(to_model_layout(x, target), x)


def test_bad_shapes_are_shape_errors(tmp_path):
    model = _fake_model(tmp_path, shape=(1, 16, 16, 1), layout="NHWC")
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 1, 8, 8), np.float32))
    with pytest.raises(ShapeError, match=r"data samples have shape \(1, 8, 8\) but the model takes \(16, 16, 1\)"):
        load_validation_data(tmp_path / "bad.npz", model)
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((3, 1, 16, 16), np.float32), y=np.array([1, 2]))
    with pytest.raises(ShapeError, match="3 samples but 2 labels"):
        load_validation_data(tmp_path / "mismatch.npz", model)


def test_bad_inputs_are_input_errors(tmp_path):
    model = _fake_model(tmp_path, shape=(1, 16, 16, 1), layout="NHWC")
    with pytest.raises(InputError, match="not found"):
        load_validation_data(tmp_path / "missing.npz", model)
    np.savez(tmp_path / "nox.npz", images=np.zeros((1, 1, 16, 16)))
    with pytest.raises(InputError, match="no 'x' array"):
        load_validation_data(tmp_path / "nox.npz", model)
    np.savez(tmp_path / "nan.npz", x=np.full((1, 1, 16, 16), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        load_validation_data(tmp_path / "nan.npz", model)


def test_model_input_without_sidecar_reads_the_tflite(digits_models):
    float_path, quant_path, _ = digits_models
    assert model_input(float_path) == ModelInput(shape=(1, 16, 16, 1), layout="NHWC", dtype="float32")
    assert model_input(quant_path).dtype == "int8"


def _write_digit_folder(root, count=12):
    from PIL import Image

    from edgesep.data.digits import load_digits_split

    split = load_digits_split()
    x, y = split.x_test[:count], split.y_test[:count]
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image[0] * 255).astype(np.uint8), mode="L").save(folder / f"{i:03d}.png")
    return x, y


def test_image_folder_labels_from_subfolders(tmp_path):
    x, y = _write_digit_folder(tmp_path / "images")
    model = _fake_model(tmp_path, shape=(1, 16, 16, 1), layout="NHWC")
    data = load_validation_data(tmp_path / "images", model)
    classes = sorted({int(v) for v in y})
    assert data.x.shape == (12, 16, 16, 1)
    # labels are indices into the sorted subfolder names; order is class by class, file by file
    order = sorted(range(12), key=lambda i: (str(y[i]), i))
    assert data.labels.tolist() == [classes.index(int(y[i])) for i in order]
    # default preprocessing: pixels / 255 -> back to the original within half a grey level
    assert np.max(np.abs(data.x[..., 0] - x[order, 0])) <= 0.5 / 255 + 1e-6


def test_image_folder_uses_sidecar_preprocessing(tmp_path):
    x, y = _write_digit_folder(tmp_path / "images", count=6)
    model = _fake_model(tmp_path, shape=(1, 16, 16, 1), layout="NHWC")
    payload = json.loads(sidecar_path(model).read_text())
    payload["preprocessing"] = {"resize": [16, 16], "channel_order": "GRAY", "scale": 1 / 255, "mean": [0.5], "std": [0.5]}
    sidecar_path(model).write_text(json.dumps(payload))
    data = load_validation_data(tmp_path / "images", model)
    order = sorted(range(6), key=lambda i: (str(y[i]), i))
    assert np.max(np.abs(data.x[..., 0] - (x[order, 0] - 0.5) / 0.5)) <= 1.0 / 255 + 1e-6
    assert data.x.min() < -0.9  # background mapped to about -1
