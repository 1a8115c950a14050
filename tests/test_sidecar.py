"""The typed sidecar: every edgesep model's JSON round-trips through Sidecar, and a damaged file is one clear error."""

from __future__ import annotations

import json

import pytest

from edgesep.errors import InputError
from edgesep.fileio import publish_model, sidecar_path
from edgesep.sidecar import Sidecar, TensorInfo, TensorQuantization, read_sidecar


def _quantized() -> Sidecar:
    return Sidecar(
        format="tflite",
        source="m.onnx",
        inputs=(TensorInfo((1, 16, 16, 1), "int8", name="x", layout="NHWC", quantization=TensorQuantization(0.5, -3)),),
        outputs=(TensorInfo((1, 10), "float32", name="y"),),
        onnx_input_layout="NCHW",
        verification={"reference": "float32 tflite", "cosine": 0.999},
        recipe={"mode": "int8"},
        preprocessing={"resize": [16, 16]},
    )


def test_a_sidecar_round_trips_through_its_file(tmp_path):
    model = tmp_path / "m.tflite"
    sidecar = _quantized()
    publish_model(model, lambda tmp: tmp.write_bytes(b"TFL3"), sidecar)
    payload = json.loads(sidecar_path(model).read_text())
    assert payload["inputs"][0] == {"name": "x", "shape": [1, 16, 16, 1], "dtype": "int8", "layout": "NHWC",
                                    "quantization": {"scale": 0.5, "zero_point": -3}}  # fmt: skip
    assert payload["recipe"] == {"mode": "int8"} and payload["calibration"] is None
    again = read_sidecar(model)
    assert again == sidecar and again.quantized and again.input_layout == "NHWC"


def test_unknown_keys_of_a_newer_version_survive_a_round_trip():
    payload = {**_quantized().to_dict(), "future_section": {"a": 1}}
    assert Sidecar.from_dict(payload).to_dict() == payload


def test_a_model_without_sidecar_is_third_party(tmp_path):
    assert read_sidecar(tmp_path / "other.tflite") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "pt"}, "'format' must be"),
        ({"inputs": {"shape": [1]}}, "'inputs' must be a list"),
        ({"inputs": [{"shape": ["1", 2]}]}, r"inputs\[0\].shape must be a list of integers"),
        ({"inputs": [{"shape": [1, 2, 3, 4], "layout": "HWCN"}]}, r"inputs\[0\].layout must be NCHW, NHWC or null"),
        ({"outputs": [{"shape": [1], "quantization": {"scale": "x"}}]}, r"outputs\[0\].quantization"),
        ({"recipe": [1, 2]}, "'recipe' must be an object or null"),
    ],
)
def test_a_damaged_sidecar_is_one_error_naming_file_and_key(tmp_path, change, message):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    sidecar_path(model).write_text(json.dumps({**_quantized().to_dict(), **change}))
    with pytest.raises(InputError, match=message) as caught:
        read_sidecar(model)
    assert str(sidecar_path(model)) in str(caught.value)


def test_a_sidecar_that_is_not_json_names_its_file(tmp_path):
    model = tmp_path / "m.tflite"
    sidecar_path(model).write_text("{not json")
    with pytest.raises(InputError, match="cannot read sidecar"):
        read_sidecar(model)
