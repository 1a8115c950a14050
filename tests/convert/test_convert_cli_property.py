"""Property-based CLI test (#14): random combinations of good and bad inputs, outputs, shapes and tolerances for
`edgesep convert`. Every outcome is exit 0 with a verified model and its sidecar, or exit 1/2 with exactly one
`edgesep: error:` line, no traceback, and no new file."""

from __future__ import annotations

import json
import shutil

import pytest
from convert_helpers import conv_relu_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesep.cli.main import main

INPUTS = ("model", "missing", "folder", "garbage", "truncated")
OUTPUTS = ("new", "existing", "the-input", "folder", "nested")
SHAPES = (None, "1,3,8,8", "x:1,3,8,8", "1,3,8", "a,b", "y:1,3,8,8", "1,3,0,8")
TOLERANCES = (None, "0.001", "0", "-1")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import onnx

    folder = tmp_path_factory.mktemp("property")
    onnx.save(conv_relu_model(), folder / "model.onnx")
    data = (folder / "model.onnx").read_bytes()
    (folder / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (folder / "garbage.onnx").write_bytes(b"not an onnx file at all")
    return folder


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(INPUTS), st.sampled_from(OUTPUTS), st.sampled_from(SHAPES), st.sampled_from(TOLERANCES),
       st.booleans())  # fmt: skip
def test_convert_cli_outcomes(files, tmp_path_factory, capsys, source, target, shape, tolerance, force):
    work = tmp_path_factory.mktemp("case")
    for name in ("model.onnx", "truncated.onnx", "garbage.onnx"):
        shutil.copy(files / name, work / name)
    (work / "folder").mkdir()
    (work / "existing.tflite").write_bytes(b"old")
    inputs = {"model": "model.onnx", "missing": "missing.onnx", "folder": "folder", "garbage": "garbage.onnx",
              "truncated": "truncated.onnx"}  # fmt: skip
    outputs = {"new": "new.tflite", "existing": "existing.tflite", "the-input": inputs[source], "folder": "folder",
               "nested": "a/b/new.tflite"}  # fmt: skip
    output = work / outputs[target]
    argv = ["convert", str(work / inputs[source]), "-o", str(output)]
    argv += ["--input-shape", shape] if shape else []
    argv += ["--tolerance", tolerance] if tolerance else []
    argv += ["--force"] if force else []
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    capsys.readouterr()  # capsys is shared by the examples: start from an empty buffer
    code = main(argv)
    err = capsys.readouterr().err
    after = {p for p in work.rglob("*") if p.is_file()}
    if code == 0:
        sidecar = json.loads(output.with_name(output.name + ".json").read_text())
        assert sidecar["verification"]["reference"] == "onnxruntime" and sidecar["runtime"]["partitions"] == 1
        assert output.read_bytes()[4:8] == b"TFL3"
        assert after - set(before) <= {output, output.with_name(output.name + ".json")}
    else:
        assert code in (1, 2), code
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if line.startswith("edgesep: error:")]
        assert len(errors) == 1, err
        assert after == set(before), sorted(map(str, after - set(before)))  # no new or partial file
        assert all(p.read_bytes() == data for p, data in before.items())  # nothing overwritten
