"""Calibration sources, seeded sampling and the bad-input checks (all before any conversion)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgesep.errors import CalibrationError, InputError
from edgesep.quantize.calibration import (
    ArraySource,
    CalibrationSource,
    CalibrationWarning,
    DigitsSource,
    ImageFolderSource,
    InputSpec,
    draw,
    open_source,
)
from edgesep.quantize.preprocessing import PreprocessingSpec

RGB32 = [InputSpec("input", (1, 3, 32, 32))]
DIGITS = [InputSpec("input", (1, 1, 16, 16))]


def test_digits_source_seeded_and_distinct():
    source = open_source("digits", input_shape=(1, 1, 16, 16))
    assert isinstance(source, DigitsSource) and len(source) == 1437
    a = draw(source, DIGITS, count=50, seed=1)
    b = draw(source, DIGITS, count=50, seed=1)
    c = draw(source, DIGITS, count=50, seed=2)
    assert a.arrays[0].shape == (50, 1, 16, 16) and a.arrays[0].dtype == np.float32
    np.testing.assert_array_equal(a.arrays[0], b.arrays[0])
    assert not np.array_equal(a.arrays[0], c.arrays[0])
    assert a.arrays[0].min() >= 0.0 and a.arrays[0].max() <= 1.0
    assert len({x.tobytes() for x in a.arrays[0]}) == 50  # sampled without replacement
    assert a.description["source"] == "digits" and a.description["samples"] == 50


def test_image_folder_source(image_folder):
    spec = PreprocessingSpec(resize=(32, 32))
    source = open_source(image_folder, preprocessing=spec)
    assert isinstance(source, ImageFolderSource) and len(source) >= 24
    data = draw(source, RGB32, count=10, seed=0)
    assert data.arrays[0].shape == (10, 3, 32, 32)
    assert data.arrays[0].min() >= 0.0 and data.arrays[0].max() <= 1.0 and data.arrays[0].std() > 0.1
    assert data.skipped == 0 and data.description["kind"] == "images"


def test_image_folder_default_spec_from_model_shape(image_folder):
    source = open_source(image_folder, input_shape=(1, 1, 16, 16))
    data = draw(source, DIGITS, count=4, seed=0)
    assert data.arrays[0].shape == (4, 1, 16, 16)


def test_corrupt_files_are_skipped_and_counted(image_folder, tmp_path):
    import shutil

    folder = tmp_path / "mixed"
    shutil.copytree(image_folder, folder)
    for i in range(2):  # 2 of >= 26 files: below the 10 % that fails calibration
        (folder / f"bad{i}.jpg").write_bytes(b"not a jpeg at all")
    source = ImageFolderSource(folder, PreprocessingSpec(resize=(32, 32)))
    with pytest.warns(CalibrationWarning, match=r"2 of \d+ calibration images could not be decoded: .*bad0.jpg"):
        data = draw(source, RGB32, count=1000, seed=0, required=5)
    assert data.skipped == 2 and len(data) == len(source) - 2


def test_all_corrupt_and_empty_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationError, match="no .jpg"):
        open_source(empty, preprocessing=PreprocessingSpec(resize=(8, 8)))
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(4):
        (broken / f"x{i}.png").write_bytes(b"\x89PNG garbage")
    source = open_source(broken, preprocessing=PreprocessingSpec(resize=(8, 8)))
    with pytest.raises(CalibrationError, match="all 4 calibration files are unreadable"):
        draw(source, [InputSpec("input", (1, 3, 8, 8))], count=4)
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "missing")


def test_array_sources(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 16, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", input=x)
    for name in ("x.npy", "x.npz"):
        source = open_source(tmp_path / name)
        assert isinstance(source, ArraySource) and len(source) == 40
        data = draw(source, DIGITS, count=40, seed=0)
        np.testing.assert_array_equal(np.sort(data.arrays[0].ravel()), np.sort(x.ravel()))


def test_multi_input_npz_and_dict_samples(tmp_path):
    a = np.zeros((6, 1, 4, 4), np.float32)
    b = np.ones((6, 2, 4, 4), np.float32)
    np.savez(tmp_path / "two.npz", left=a, right=b)
    specs = [InputSpec("left", (1, 1, 4, 4)), InputSpec("right", (1, 2, 4, 4))]
    data = draw(ArraySource(tmp_path / "two.npz"), specs, count=6)
    assert data.arrays[0].shape == (6, 1, 4, 4) and data.arrays[1].shape == (6, 2, 4, 4)
    assert data.arrays[1].min() == 1.0
    with pytest.raises(CalibrationError, match="lacks input 'right'"):
        draw([{"left": a[0]}], specs, count=1)


def test_user_source_in_a_few_lines_is_reservoir_sampled():
    class Ramp:
        def __iter__(self):
            for i in range(100):
                yield np.full((1, 16, 16), i / 100, np.float32)

    assert isinstance(Ramp(), CalibrationSource)
    first = draw(Ramp(), DIGITS, count=20, seed=5)
    again = draw(Ramp(), DIGITS, count=20, seed=5)
    np.testing.assert_array_equal(first.arrays[0], again.arrays[0])
    values = first.arrays[0][:, 0, 0, 0]
    assert len(set(values.tolist())) == 20 and values.max() > 0.5  # not just the first 20 items
    batched = draw([np.zeros((8, 1, 16, 16), np.float32)], DIGITS, count=100, required=1)
    assert len(batched) == 8


def test_fewer_samples_than_requested_warns_and_proceeds(tmp_path):
    np.save(tmp_path / "few.npy", np.zeros((7, 1, 16, 16), np.float32))
    with pytest.warns(CalibrationWarning, match="only 7 sample"):
        data = draw(open_source(tmp_path / "few.npy"), DIGITS, count=300)
    assert len(data) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draw(open_source(tmp_path / "few.npy"), DIGITS, count=7)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((5, 3, 16, 16), np.float32), r"expects \(1, 1, 16, 16\).*3 channels given, the model expects 1"),
        (np.zeros((5, 16, 16, 1), np.float32), r"has shape \(1, 16, 16, 1\).*looks NHWC"),
        (np.zeros((5, 1, 28, 28), np.float32), r"shape \(1, 1, 28, 28\) but the model expects \(1, 1, 16, 16\)"),
        (np.zeros((5, 1, 16, 16), np.uint8), r"must be float32.*got dtype uint8"),
        (np.full((5, 1, 16, 16), np.nan, np.float32), "NaN"),
    ],
)
def test_wrong_shape_dtype_channels_state_expected_and_given(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(CalibrationError, match=message):
        draw(open_source(tmp_path / "bad.npy"), DIGITS, count=5)


def test_unsupported_paths(tmp_path):
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(InputError, match="cannot calibrate from a.csv"):
        open_source(tmp_path / "a.csv")
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "nothing.npy")
    with pytest.raises(InputError, match="needs a preprocessing spec"):
        open_source(tmp_path)
