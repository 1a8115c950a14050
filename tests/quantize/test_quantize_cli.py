"""`edgesep quantize` through edgesep.cli.main.main: JSON, tables, recipe/preprocessing files, exit codes."""

from __future__ import annotations

import json

import numpy as np

from edgesep.cli.main import main
from edgesep.fileio import sidecar_path


def test_json_output_and_recipe_reuse(digits_onnx, tmp_path, capsys):
    out = tmp_path / "q.tflite"
    code = main(
        [
            "-q",
            "quantize",
            str(digits_onnx),
            "--calib",
            "digits",
            "-o",
            str(out),
            "--samples",
            "60",
            "--holdout",
            "30",
            "--input-type",
            "int8",
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and out.is_file()
    assert payload["recipe"]["samples"] == 60 and payload["recipe"]["input_type"] == "int8"
    assert payload["kernel_dtypes"]["DEPTHWISE_CONV_2D"] == "int8"
    assert payload["eval_samples"] == 30 and payload["held_out"] is True
    assert payload["fidelity"]["top1_agreement"] >= 0.95 and payload["size_bytes"] < payload["float_size_bytes"]

    again = tmp_path / "again.tflite"
    code = main(
        [
            "-q",
            "quantize",
            str(digits_onnx),
            "--calib",
            "digits",
            "-o",
            str(again),
            "--recipe",
            str(sidecar_path(out)),
            "--holdout",
            "30",
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["recipe"] == payload["recipe"]
    assert again.read_bytes() == out.read_bytes()  # same recipe + seed -> the same model


def test_analyze_and_auto_fallback_print_tables(digits_onnx, tmp_path, capsys):
    out = tmp_path / "fb.tflite"
    code = main(
        [
            "-q",
            "quantize",
            str(digits_onnx),
            "--calib",
            "digits",
            "-o",
            str(out),
            "--samples",
            "60",
            "--holdout",
            "30",
            "--per-tensor",
            "--analyze",
            "--auto-fallback",
            "1",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "per-layer error" in text and "RMSE / range" in text and "(float)" in text
    assert "trade-off" in text and "int8+float(1)" in text and "float32" in text
    assert "top-1 agreement" in text and "kernels:" in text


def test_image_folder_with_preprocessing_file(digits_onnx, image_folder, tmp_path, capsys):
    spec = {"resize": [16, 16], "channel_order": "GRAY", "scale": 1 / 255}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "img.tflite"
    code = main(
        [
            "-q",
            "quantize",
            str(digits_onnx),
            "--calib",
            str(image_folder),
            "--preprocessing",
            str(tmp_path / "spec.json"),
            "-o",
            str(out),
            "--samples",
            "20",
            "--holdout",
            "8",
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["calibration"]["kind"] == "images" and payload["calibration"]["samples"] == 20
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["preprocessing"]["channel_order"] == "GRAY" and meta["preprocessing"]["resize"] == [16, 16]


def test_bad_inputs_exit_2_with_one_line(digits_onnx, tmp_path, capsys):
    np.save(tmp_path / "rgb.npy", np.zeros((4, 3, 16, 16), np.float32))
    code = main(["quantize", str(digits_onnx), "--calib", str(tmp_path / "rgb.npy"), "-o", str(tmp_path / "x.tflite")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("edgesep: error:") and "3 channels given, the model expects 1" in err[-1]
    assert not (tmp_path / "x.tflite").exists()

    (tmp_path / "taken.tflite").write_bytes(b"x")
    code = main(["quantize", str(digits_onnx), "--calib", "digits", "-o", str(tmp_path / "taken.tflite")])
    assert code == 2 and "--force" in capsys.readouterr().err

    code = main(["quantize", str(digits_onnx), "--calib", "digits", "-o", str(tmp_path / "y.tflite"), "--mode", "int4"])
    assert code == 2 and "mode must be one of" in capsys.readouterr().err


def test_fewer_samples_is_a_one_line_warning(digits_onnx, tmp_path, capsys):
    from edgesep.data.digits import load_digits_split

    np.save(tmp_path / "few.npy", load_digits_split().x_train[:12])
    code = main(["quantize", str(digits_onnx), "--calib", str(tmp_path / "few.npy"), "-o", str(tmp_path / "w.tflite")])
    captured = capsys.readouterr()
    assert code == 0 and (tmp_path / "w.tflite").is_file()
    assert "edgesep: warning: calibration source has only 12 sample(s), fewer than the 300 requested" in captured.err
    assert "on 12 calibration samples" in captured.out
