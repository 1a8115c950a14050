"""Keras input: the mission's example converts and matches Keras; bad files fail cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.errors import ConfigError, InputError, ToleranceError


@pytest.fixture(scope="module")
def keras_example(tmp_path_factory):
    from edgesep.models.keras_example import build_keras_example

    folder = tmp_path_factory.mktemp("keras")
    model = build_keras_example(seed=0)
    model.save(folder / "example.keras")
    model.save(folder / "example.h5")
    return model, folder


def _tflite_outputs(path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    rows = []
    for sample in x:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample[None])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].copy())
    return np.stack(rows)


@pytest.mark.parametrize("name", ["example.keras", "example.h5"])
def test_keras_example_converts_and_matches_keras(keras_example, tmp_path, name):
    from edgesep.convert import convert
    from edgesep.fileio import sidecar_path

    model, folder = keras_example
    out = tmp_path / "example.tflite"
    result = convert(folder / name, out)  # convert() dispatches Keras files to convert_keras
    assert result.input_shapes == ((1, 32, 32, 3),) and result.input_layout == "NHWC"
    assert result.output_shapes == ((1, 10),)
    assert result.fidelity.max_abs < 1e-4 and result.fidelity.cosine > 0.999999
    assert result.op_histogram["DEPTHWISE_CONV_2D"] == 1 and result.op_histogram["CONV_2D"] == 1
    # independent check on fresh seeded images, including probabilities summing to 1
    x = np.random.default_rng(7).uniform(0, 1, (6, 32, 32, 3)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    actual = _tflite_outputs(out, x)
    assert np.abs(actual - expected).max() < 1e-4
    assert np.allclose(actual.sum(axis=1), 1.0, atol=1e-5)
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["verification"]["reference"] == "keras"
    assert sidecar["inputs"][0]["shape"] == [1, 32, 32, 3] and sidecar["inputs"][0]["layout"] == "NHWC"


def test_saved_model_folder_converts(keras_example, tmp_path):
    from edgesep.convert.keras import convert_keras

    model, _ = keras_example
    folder = tmp_path / "saved"
    model.export(str(folder), format="tf_saved_model", verbose=False)
    result = convert_keras(folder, tmp_path / "sm.tflite")
    assert result.fidelity.max_abs < 1e-4
    assert result.output_shapes == ((1, 10),)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("junk.keras", b"not a model at all", "is not a Keras model"),
    ("junk.h5", b"\x00" * 64, "is not a Keras model"),
])  # fmt: skip
def test_file_that_is_not_a_keras_model_is_one_clear_error(tmp_path, name, content, message):
    from edgesep.convert.keras import convert_keras

    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out.tflite"
    with pytest.raises(InputError, match=message):
        convert_keras(source, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no partial output, no sidecar


def test_folder_without_saved_model_is_an_input_error(tmp_path):
    from edgesep.convert.keras import convert_keras

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a SavedModel"):
        convert_keras(tmp_path / "empty", tmp_path / "out.tflite")
    assert not (tmp_path / "out.tflite").exists()


def test_tolerance_failure_writes_nothing(keras_example, tmp_path):
    from edgesep.convert.keras import convert_keras

    _, folder = keras_example
    out = tmp_path / "out.tflite"
    with pytest.raises(ToleranceError, match="differs from Keras"):
        convert_keras(folder / "example.keras", out, tolerance=1e-12)  # measured relative error ~6e-7
    assert not out.exists()


def test_cli_convert_keras_and_bad_file_exit_codes(keras_example, tmp_path, capsys):
    from edgesep.cli.main import main

    _, folder = keras_example
    out = tmp_path / "cli.tflite"
    assert main(["convert", str(folder / "example.keras"), "-o", str(out)]) == 0
    assert out.is_file()
    bad = tmp_path / "bad.keras"
    bad.write_text("hello")
    assert main(["convert", str(bad), "-o", str(tmp_path / "bad.tflite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgesep: error:") and "is not a Keras model" in err[-1]
    assert not (tmp_path / "bad.tflite").exists()


def test_onnx_only_options_are_refused_and_samples_honoured_for_keras(keras_example, tmp_path, capsys):
    """convert() used to drop keep_nchw/input_shape/verify_data/samples/seed for Keras input without a word."""
    from edgesep.cli.main import main
    from edgesep.convert import convert
    from edgesep.fileio import sidecar_path

    _, folder = keras_example
    out = tmp_path / "refused.tflite"
    with pytest.raises(ConfigError, match="--keep-nchw, --input-shape: for ONNX input only"):
        convert(folder / "example.keras", out, keep_nchw=True, input_shape=(1, 3, 32, 32))
    assert main(["-q", "convert", str(folder / "example.keras"), "-o", str(out), "--verify-data", "x.npy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgesep: error:") and "--verify-data: for ONNX input only" in err[0]
    assert not out.exists()
    result = convert(folder / "example.keras", out, samples=7, seed=3)
    assert result.fidelity.max_abs < 1e-4 and result.fidelity.cosine > 0.999999
    assert json.loads(sidecar_path(out).read_text())["verification"]["samples"] == 7
