"""Property-based CLI test (#16): random combinations of good and bad models, outputs, calibration data, modes,
shapes and sample counts for `edgesep quantize`. Every outcome is exit 0 with a quantized model whose sidecar
records a measured verification, or exit 1/2 with exactly one `edgesep: error:` line, no traceback, no new file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgesep.cli.main import main

# each option: (values that must work, every value); an example takes good values for all but up to two options
OPTIONS = {
    "model": (("model",), ("model", "missing", "folder", "garbage", "string-input")),
    "output": (("new", "nested"), ("new", "existing", "the-input", "folder", "nested")),
    "calib": (("calib.npy",), (None, "calib.npy", "nan.npy", "wrong-shape.npy", "objects.npz", "digits", "missing.npy")),
    "mode": (("int8", "dynamic", "float16"), ("int8", "dynamic", "float16", "int3")),
    "shape": ((None, "1,3,8,8"), (None, "1,3,8,8", "1,3,8", "a,b", "1,3,9,8")),
    "samples": (("4", None), (None, "4", "0", "-1")),
}


@st.composite
def cases(draw) -> dict:
    """Mostly valid commands with up to two options drawn from all their values (valid or not)."""
    anything = draw(st.sets(st.sampled_from(sorted(OPTIONS)), max_size=2))
    case = {name: draw(st.sampled_from(OPTIONS[name][1] if name in anything else OPTIONS[name][0])) for name in OPTIONS}
    return {**case, "force": draw(st.booleans())}


def conv_relu(path) -> None:
    """A seeded 3x3 Conv + Relu on a 1x3x8x8 input."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b")]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "conv_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8, 8])], weights)  # fmt: skip
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def string_input(path) -> None:
    from onnx import TensorProto, helper, save

    value = helper.make_tensor_value_info("text", TensorProto.STRING, [1, 4])
    out = helper.make_tensor_value_info("y", TensorProto.STRING, [1, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["y"])], "g", [value], [out])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("property")
    conv_relu(folder / "model.onnx")
    string_input(folder / "string-input.onnx")
    (folder / "garbage.onnx").write_bytes(b"not an onnx file at all")
    rng = np.random.default_rng(0)
    np.save(folder / "calib.npy", rng.random((8, 3, 8, 8), dtype=np.float32))
    np.save(folder / "nan.npy", np.full((8, 3, 8, 8), np.nan, dtype=np.float32))
    np.save(folder / "wrong-shape.npy", rng.random((8, 1, 8, 8), dtype=np.float32))
    np.savez(folder / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    return folder


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases())
def test_quantize_cli_outcomes(files, tmp_path_factory, capsys, case):
    work = tmp_path_factory.mktemp("case")
    for path in files.iterdir():
        shutil.copy(path, work / path.name)
    (work / "folder").mkdir()
    (work / "existing.tflite").write_bytes(b"old")
    models = {"model": "model.onnx", "missing": "missing.onnx", "folder": "folder", "garbage": "garbage.onnx",
              "string-input": "string-input.onnx"}  # fmt: skip
    outputs = {"new": "q.tflite", "existing": "existing.tflite", "the-input": models[case["model"]],
               "folder": "folder", "nested": "a/b/q.tflite"}  # fmt: skip
    output, mode, calib = work / outputs[case["output"]], case["mode"], case["calib"]
    argv = ["-q", "quantize", str(work / models[case["model"]]), "-o", str(output), "--mode", mode]
    argv += ["--calib", calib if calib == "digits" else str(work / calib)] if calib else []
    argv += ["--input-shape", case["shape"]] if case["shape"] else []
    argv += ["--samples", case["samples"]] if case["samples"] else []
    argv += ["--force"] if case["force"] else []
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    event(f"exit {code}")
    after = {p for p in work.rglob("*") if p.is_file()}
    if code == 0:
        sidecar_path = output.with_name(output.name + ".json")
        sidecar = json.loads(sidecar_path.read_text())
        assert sidecar["recipe"]["mode"] == mode and output.read_bytes()[4:8] == b"TFL3"
        verification = sidecar["verification"]
        assert verification["reference"] == "float32 tflite" and verification["samples"] >= 1
        assert 0.99 <= verification["cosine"] <= 1.0 + 1e-9  # measured, on a real conv (not a string identity)
        assert after - set(before) <= {output, sidecar_path}
    else:
        assert code in (1, 2), code
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if line.startswith("edgesep: error:")]
        assert len(errors) == 1, err
        assert after == set(before), sorted(map(str, after - set(before)))
        assert all(p.read_bytes() == data for p, data in before.items())
