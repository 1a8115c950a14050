"""`edgesep convert` through edgesep.cli.main.main: output, exit codes, nothing left behind on failure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from convert_helpers import make_model  # noqa: E402  (tests/convert is on sys.path)
from onnx import helper

from edgesep.cli.main import main


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    import onnx

    rng = np.random.default_rng(0)
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
        ],
        [("x", [1, 3, 8, 8])],
        [("y", [1, 4])],
        {
            "w": rng.standard_normal((6, 3, 3, 3)).astype(np.float32),
            "b": rng.standard_normal(6).astype(np.float32),
            "fc": rng.standard_normal((4, 6)).astype(np.float32),
        },
    )
    path = tmp_path_factory.mktemp("cli") / "small.onnx"
    onnx.save(model, str(path))
    return path


def test_convert_json_and_report(small_onnx, tmp_path, capsys):
    output = tmp_path / "small.tflite"
    assert main(["convert", str(small_onnx), "-o", str(output), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["input_shapes"] == [[1, 8, 8, 3]]
    assert payload["transposes"] == 0
    assert payload["fidelity"]["relative"] < 1e-5
    assert output.exists() and output.with_name("small.tflite.json").exists()

    assert main(["convert", str(small_onnx), "-o", str(output), "--report", "--force"]) == 0
    text = capsys.readouterr().out
    assert "CONV_2D" in text and "FULLY_CONNECTED" in text and "cosine" in text


def test_existing_output_without_force_exits_2(small_onnx, tmp_path, capsys):
    output = tmp_path / "exists.tflite"
    output.write_bytes(b"keep me")
    assert main(["convert", str(small_onnx), "-o", str(output)]) == 2
    assert output.read_bytes() == b"keep me"
    assert "--force" in capsys.readouterr().err


def test_tolerance_miss_exits_1_and_writes_nothing(small_onnx, tmp_path, capsys):
    output = tmp_path / "strict.tflite"
    assert main(["convert", str(small_onnx), "-o", str(output), "--tolerance", "0"]) == 1
    assert "tolerance" in capsys.readouterr().err
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_non_onnx_file_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.onnx"
    bad.write_text("hello, I am a text file\n")
    assert main(["convert", str(bad), "-o", str(tmp_path / "x.tflite")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgesep: error")]
    assert len(errors) == 1 and "not a readable ONNX model" in errors[0]


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x.tflite")]) == 2
    assert "not found" in capsys.readouterr().err


def test_keep_nchw_flag(small_onnx, tmp_path, capsys):
    output = tmp_path / "nchw.tflite"
    assert main(["convert", str(small_onnx), "-o", str(output), "--keep-nchw", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["input_layout"] == "NCHW" and payload["input_shapes"] == [[1, 3, 8, 8]]
    assert payload["fidelity"]["relative"] < 1e-5
