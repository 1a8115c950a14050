"""`edgesep quantize model.keras`: the mission's Keras example enters the same int8 path (NCHW calibration data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.cli.main import main


@pytest.fixture(scope="module")
def keras_int8(tmp_path_factory):
    """The Keras example (seeded weights) saved as .keras, quantized from seeded random NCHW calibration data."""
    from edgesep.models.keras_example import build_keras_example

    folder = tmp_path_factory.mktemp("keras_quant")
    model = build_keras_example(seed=0)
    path = folder / "example.keras"
    model.save(path)
    calib = folder / "calib.npy"
    np.save(calib, np.random.default_rng(0).random((160, 3, 32, 32), dtype=np.float32))
    out = folder / "example_int8.tflite"
    args = ["-q", "quantize", str(path), "-o", str(out), "--calib", str(calib), "--samples", "100", "--json"]
    return model, folder, out, args


def test_keras_model_quantizes_to_int8_matching_keras(keras_int8, capsys):
    from ai_edge_litert.interpreter import Interpreter

    model, folder, out, args = keras_int8
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recipe"]["mode"] == "int8" and result["held_out"] is True and result["eval_samples"] == 60
    assert result["fidelity"]["top1_agreement"] >= 0.98 and result["fidelity"]["cosine"] > 0.999
    assert result["size_bytes"] < 0.35 * result["float_size_bytes"]  # measured 151,200 vs 581,728 bytes
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["source_format"] == "keras" and sidecar["inputs"][0]["layout"] == "NHWC"
    assert sidecar["inputs"][0]["shape"] == [1, 32, 32, 3] and sidecar["calibration"]["samples"] == 100

    # the int8 model against Keras's own float output on fresh seeded inputs (NHWC, the model's layout)
    x = np.random.default_rng(1).random((40, 32, 32, 3), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    interpreter = Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert np.dtype(inp["dtype"]) == np.float32  # int8 inside, float I/O by default
    got = []
    for sample in x:
        interpreter.set_tensor(inp["index"], sample[None])
        interpreter.invoke()
        got.append(interpreter.get_tensor(outp["index"])[0].copy())
    got = np.asarray(got)
    cosine = np.sum(expected * got, axis=1) / (np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1))
    assert np.mean(expected.argmax(1) == got.argmax(1)) >= 0.95  # measured 1.0
    assert cosine.min() > 0.999  # measured 0.99989
    assert np.max(np.abs(expected - got)) < 0.01  # measured 0.003 (softmax outputs)


def test_keras_bad_input_is_one_error_and_no_output(keras_int8, tmp_path, capsys):
    _, folder, _, args = keras_int8
    nhwc = tmp_path / "nhwc.npy"
    np.save(nhwc, np.random.default_rng(0).random((120, 32, 32, 3), dtype=np.float32))
    out = tmp_path / "bad.tflite"
    bad_data = [*args[:3], "-o", str(out), "--calib", str(nhwc), "--samples", "100"]
    assert main(bad_data) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NHWC" in err[0] and not out.exists()

    assert main([*bad_data[:5], "--calib", str(folder / "calib.npy"), "--mode", "float16"]) == 2
    assert "int8 only" in capsys.readouterr().err and not out.exists()

    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip archive")
    assert main(["-q", "quantize", str(junk), "-o", str(out), "--calib", str(folder / "calib.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a Keras model" in err[0] and not out.exists()


def test_keras_takes_the_same_int8_path_with_analysis_and_auto_fallback(keras_int8, tmp_path, capsys):
    """One int8 path for every float source: --analyze and --auto-fallback work on Keras input as on ONNX."""
    _, folder, _, args = keras_int8
    out = tmp_path / "fallback.tflite"
    assert main([*args[:3], "-o", str(out), *args[5:], "--auto-fallback", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    names = [variant["name"] for variant in result["variants"]]
    assert names == ["float32", "int8", "int8+float(1)"] and len(result["recipe"]["keep_float"]) == 1
    assert result["layers"] and result["sensitivity"][0]["name"] == result["recipe"]["keep_float"][0]
    full, kept = result["variants"][1]["fidelity"], result["variants"][2]["fidelity"]
    assert kept["cosine"] >= full["cosine"] > 0.999  # keeping the worst layer in float does not lower agreement
    assert json.loads(out.with_name(out.name + ".json").read_text())["source_format"] == "keras"


def test_keras_takes_empirical_bias_correction_on_the_int8_model(keras_int8, tmp_path, capsys):
    """No PyTorch model behind a Keras file: empirical bias correction acts on the int8 TFLite model."""
    _, folder, _, args = keras_int8
    out = tmp_path / "bias.tflite"
    assert main([*args[:3], "-o", str(out), *args[5:], "--bias-correction", "empirical"]) == 0
    result = json.loads(capsys.readouterr().out)
    report = result["prepared"]["bias_correction"]
    assert report["on"] == "int8 tflite" and len(report["layers"]) == 2  # depthwise and pointwise conv
    assert len(report["skipped"]) == 1 and report["skipped"][0].endswith("(no bias)")  # the bias-free classifier
    assert result["fidelity"]["top1_agreement"] >= 0.98 and result["fidelity"]["cosine"] > 0.999
