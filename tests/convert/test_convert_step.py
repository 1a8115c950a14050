"""The convert step end to end on the reference SepCNN: numbers, layout, sidecar, overwrite rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.convert import convert
from edgesep.errors import InputError, OutputExistsError
from edgesep.fileio import sidecar_path


@pytest.fixture(scope="module")
def converted(sepcnn_onnx, tmp_path_factory):
    output = tmp_path_factory.mktemp("converted") / "sepcnn.tflite"
    return convert(sepcnn_onnx, output)


def test_sepcnn_matches_onnxruntime_with_no_transposes(converted):
    assert converted.fidelity.relative < 1e-5
    assert converted.fidelity.cosine > 0.999999
    assert converted.fidelity.top1_agreement == 1.0
    assert converted.transposes == 0
    histogram = converted.op_histogram
    assert histogram["DEPTHWISE_CONV_2D"] == 3
    assert histogram["CONV_2D"] == 4
    assert histogram["FULLY_CONNECTED"] == 1
    # BatchNorm is folded and every ReLU is fused into its convolution
    assert not {"RELU", "RELU6", "MUL", "ADD"} & set(histogram)


def test_sepcnn_input_is_nhwc_and_sidecar_describes_it(converted):
    assert converted.input_layout == "NHWC"
    assert converted.input_shapes == ((1, 16, 16, 1),)
    assert converted.output_shapes == ((1, 10),)
    payload = json.loads(sidecar_path(converted.path).read_text())
    assert payload["format"] == "tflite"
    assert payload["inputs"][0]["shape"] == [1, 16, 16, 1]
    assert payload["inputs"][0]["layout"] == "NHWC"
    assert payload["onnx_input_layout"] == "NCHW"
    assert payload["verification"]["reference"] == "onnxruntime"
    assert payload["verification"]["max_abs"] == pytest.approx(converted.fidelity.max_abs)


def test_tflite_file_reproduces_onnxruntime(converted, sepcnn_onnx):
    import onnxruntime as ort

    from edgesep.runners.tflite import run_tflite

    batch = np.random.default_rng(5).standard_normal((1, 1, 16, 16)).astype(np.float32)
    expected = ort.InferenceSession(str(sepcnn_onnx), providers=["CPUExecutionProvider"]).run(None, {"input": batch})[0]
    got = run_tflite(converted.path.read_bytes(), [[batch.transpose(0, 2, 3, 1)]]).outputs[0]
    assert np.max(np.abs(got - expected)) < 1e-4


def test_keep_nchw_takes_onnx_layout(sepcnn_onnx, tmp_path):
    result = convert(sepcnn_onnx, tmp_path / "nchw.tflite", keep_nchw=True)
    assert result.input_layout == "NCHW"
    assert result.input_shapes == ((1, 1, 16, 16),)
    assert result.fidelity.relative < 1e-5
    assert result.transposes <= 1  # at most the input transpose NCHW -> NHWC (a reshape when C == 1)


def test_refuses_to_overwrite_without_force(converted, sepcnn_onnx):
    before = converted.path.read_bytes()
    with pytest.raises(OutputExistsError):
        convert(sepcnn_onnx, converted.path)
    assert converted.path.read_bytes() == before


def test_corrupt_file_is_one_line_input_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx model at all\xff" * 10)
    with pytest.raises(InputError) as info:
        convert(bad, tmp_path / "out.tflite")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.tflite").exists()
