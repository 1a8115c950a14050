"""Property-based CLI test (#16): random combinations of good and bad models, data, sample and run counts and
output folders for `edgesep validate` on `local`. Every outcome is exit 0 with measured numbers (cosine and
agreement of the int8 model against the float one, on the samples asked for), or exit 1/2 with exactly one
`edgesep: error:` line, no traceback, and no new file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgesep.cli.main import main

# each option: (values that must work, every value); an example takes good values for all but up to two options
OPTIONS = {
    "float": (("f.tflite",), ("f.tflite", "missing.tflite", "folder", "garbage.tflite")),
    "quant": (("q.tflite",), ("q.tflite", "missing.tflite", "folder", "garbage.tflite", "f.tflite")),
    "data": (("val.npz", "val.npy"), ("val.npz", "val.npy", "wrong-shape.npz", "objects.npz", "no-x.npz", "digits",
                                      "missing.npz", "folder")),
    "samples": ((None, "3"), (None, "3", "0", "-2", "100")),
    "runs": (("1",), ("1", "0", "-1")),
    "output_dir": ((None, "out"), (None, "out", "existing-file", "existing-report")),
}  # fmt: skip


@st.composite
def cases(draw) -> dict:
    anything = draw(st.sets(st.sampled_from(sorted(OPTIONS)), max_size=2))
    case = {name: draw(st.sampled_from(OPTIONS[name][1] if name in anything else OPTIONS[name][0])) for name in OPTIONS}
    return {**case, "force": draw(st.booleans())}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from onnx import TensorProto, helper, numpy_helper, save

    folder = tmp_path_factory.mktemp("property")
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((6, 3, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b")]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "conv_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8, 8])], weights)  # fmt: skip
    onnx_path = folder / "m.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(onnx_path))
    np.save(folder / "calib.npy", rng.random((8, 3, 8, 8), dtype=np.float32))
    assert main(["-q", "convert", str(onnx_path), "-o", str(folder / "f.tflite")]) == 0
    assert main(["-q", "quantize", str(onnx_path), "-o", str(folder / "q.tflite"), "--calib",
                 str(folder / "calib.npy"), "--samples", "8"]) == 0  # fmt: skip
    for name in ("m.onnx", "calib.npy"):
        (folder / name).unlink()
    x = rng.random((6, 3, 8, 8), dtype=np.float32)
    np.savez(folder / "val.npz", x=x)
    np.save(folder / "val.npy", x)
    np.savez(folder / "wrong-shape.npz", x=x[:, :1])
    np.savez(folder / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    np.savez(folder / "no-x.npz", images=x)
    (folder / "garbage.tflite").write_bytes(b"not a flatbuffer at all")
    return folder


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases())
def test_validate_cli_outcomes(files, tmp_path_factory, capsys, case):
    work = tmp_path_factory.mktemp("case")
    for path in files.iterdir():
        shutil.copy(path, work / path.name)
    (work / "folder").mkdir()
    (work / "existing-file").write_bytes(b"a file, not a folder")
    (work / "existing-report").mkdir()
    (work / "existing-report" / "report.md").write_text("an earlier report\n")
    data = case["data"] if case["data"] == "digits" else str(work / case["data"])
    argv = ["-q", "validate", "--float", str(work / case["float"]), "--quant", str(work / case["quant"]),
            "--data", data, "--runs", case["runs"], "--warmup", "0", "--json"]  # fmt: skip
    argv += ["--samples", case["samples"]] if case["samples"] else []
    argv += ["--output-dir", str(work / case["output_dir"])] if case["output_dir"] else []
    argv += ["--force"] if case["force"] else []
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    event(f"exit {code}")
    after = {p for p in work.rglob("*") if p.is_file()}
    if code == 0:
        result = json.loads(captured.out)
        wanted = min(int(case["samples"]), 6) if case["samples"] else 6
        assert result["samples"] == wanted and result["baseline"]["complete"] and result["candidate"]["complete"]
        agreement = result["agreement"]
        assert 0.99 <= agreement["cosine"] <= 1.0 + 1e-9 and agreement["max_abs"] >= 0.0
        if case["quant"] == case["float"]:
            assert agreement["max_abs"] == 0.0  # the same model on the same inputs: bit-identical outputs
        new = after - set(before)
        if case["output_dir"]:
            folder = work / case["output_dir"]
            assert new and all(p.is_relative_to(folder) for p in new)
            assert result["results_files"] and all(Path(name).is_file() for name in result["results_files"])
        else:
            assert new == set()
    else:
        assert code in (1, 2), code
        assert "Traceback" not in captured.err
        errors = [line for line in captured.err.splitlines() if line.startswith("edgesep: error:")]
        assert len(errors) == 1, captured.err
        assert after == set(before), sorted(map(str, after - set(before)))
        assert all(p.read_bytes() == content for p, content in before.items())
