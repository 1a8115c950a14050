"""Reliability round 2 (#16), class 7 and class 4 leftovers: each failure is one `edgesep: error:` line naming
the file or value, exit 2, and nothing new on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from edgesep.cli.main import main

TESTS = Path(__file__).resolve().parent
TINY = f"{TESTS / 'export' / 'models_for_tests.py'}:tiny"


def one_error_line(capsys, argv: list[str], *, code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("edgesep: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def add_graph(inputs: list[str]) -> object:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Add", inputs, ["y"], name="add")
    return helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])


# -- class 7: inspect runs the ONNX checker -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_an_invalid_onnx_graph_is_refused_by_the_checker(tmp_path, capsys, command):
    """A node reading a tensor nothing produces ('ghost'): the table used to print, exit 0."""
    model = tmp_path / "dangling.onnx"
    save(add_graph(["x", "ghost"]), str(model))
    before = files_under(tmp_path)
    argv = ["-q", command, str(model)] + (["-o", str(tmp_path / "d.tflite")] if command == "convert" else [])
    line = one_error_line(capsys, argv)
    assert f"{model} fails onnx.checker:" in line and "'ghost'" in line
    assert files_under(tmp_path) == before


def test_a_valid_graph_still_inspects(tmp_path, capsys):
    model = tmp_path / "ok.onnx"
    save(add_graph(["x", "x"]), str(model))
    assert main(["-q", "inspect", str(model), "--json"]) == 0


# -- class 7: a folder where a model file is expected says it is a folder ------------------------------------------


def test_a_folder_given_as_a_model_file_says_it_is_a_folder(tmp_path, capsys):
    onnx_dir, tflite_dir, weights_dir = tmp_path / "m.onnx", tmp_path / "m.tflite", tmp_path / "w.pt"
    pruned_dir = tmp_path / "pruned.pt"
    for folder in (onnx_dir, tflite_dir, weights_dir, pruned_dir):
        folder.mkdir()
    cases = [
        (["inspect", str(onnx_dir)], f"ONNX model {onnx_dir} is a folder, not a file"),
        (["quantize", str(onnx_dir), "-o", str(tmp_path / "q.tflite"), "--mode", "dynamic"], f"{onnx_dir} is a folder"),
        (["bench", str(tflite_dir), "--runs", "1"], f"model {tflite_dir} is a folder, not a file"),
        (["validate", "--float", str(tflite_dir), "--quant", str(tflite_dir), "--data", "digits"], f"model {tflite_dir} is a folder"),
        (
            ["export", TINY, "--weights", str(weights_dir), "-o", str(tmp_path / "e.onnx")],
            f"weights file {weights_dir} is a folder, not a file",
        ),
        (
            ["prune", str(pruned_dir), "-o", str(tmp_path / "p.pt"), "--ratio", "0.5"],
            f"pruned checkpoint {pruned_dir} is a folder, not a file",
        ),
    ]
    before = files_under(tmp_path)
    for argv, expected in cases:
        line = one_error_line(capsys, ["-q", *argv])
        assert expected in line, (argv, line)
        assert "not found" not in line
    assert files_under(tmp_path) == before


# -- class 7: run --only STEP stops after that step; an output outside the config's folder is said ------------------


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    path = folder / "m.onnx"
    assert main(["-q", "export", TINY, "-o", str(path)]) == 0
    return path


def test_run_only_convert_on_a_new_folder_runs_convert_and_stops(tmp_path, capsys, onnx_model):
    config = tmp_path / "p.toml"
    config.write_text(f'output = "out"\ndevices = ["local"]\n[model]\nonnx = "{onnx_model}"\n[quantize]\nmodes = ["int8"]\n')
    assert main(["-q", "run", str(config), "--only", "convert", "--json"]) == 0
    captured = capsys.readouterr()
    assert "error" not in captured.err
    out = tmp_path / "out"
    assert (out / "model_float32.tflite").is_file() and (out / "model_float32.tflite.json").is_file()
    assert not (out / "model_int8.tflite").exists() and not (out / "validate").exists()


def test_an_output_outside_the_config_folder_is_allowed_and_said_once(tmp_path, capsys, onnx_model):
    configs = tmp_path / "a" / "b"
    configs.mkdir(parents=True)
    config = configs / "p.toml"
    config.write_text(f'output = "../../elsewhere"\n[model]\nonnx = "{onnx_model}"\n')
    assert main(["-q", "run", str(config), "--until", "convert"]) == 0
    err = capsys.readouterr().err
    resolved = (tmp_path / "elsewhere").resolve()
    notes = [line for line in err.splitlines() if "outside the config's folder" in line]
    assert notes == [f"edgesep: output folder {resolved} is outside the config's folder {configs.resolve()}"]
    assert (resolved / "model_float32.tflite").is_file()

    inside = configs / "q.toml"
    inside.write_text(f'output = "out"\n[model]\nonnx = "{onnx_model}"\n')
    assert main(["-q", "run", str(inside), "--until", "convert"]) == 0
    assert "outside" not in capsys.readouterr().err
    absolute = tmp_path / "given"  # -o (like an absolute output in the file) already says where the run writes
    assert main(["-q", "run", str(inside), "--until", "convert", "-o", str(absolute)]) == 0
    assert "outside" not in capsys.readouterr().err and (absolute / "model_float32.tflite").is_file()


# -- class 4: a non-numeric model input is refused, not "verified" with cosine 1.0 ---------------------------------


def identity_model(path: Path, elem_type: int, name: str = "text") -> Path:
    value = helper.make_tensor_value_info(name, elem_type, [1, 4])
    out = helper.make_tensor_value_info("y", elem_type, [1, 4])
    node = helper.make_node("Identity", [name], ["y"])
    graph = helper.make_graph([node], "g", [value], [out])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize(
    ("elem_type", "dtype"), [(TensorProto.STRING, "string"), (TensorProto.BOOL, "bool"), (TensorProto.COMPLEX64, "complex64")]
)
def test_a_model_with_a_non_numeric_input_is_refused(tmp_path, capsys, elem_type, dtype):
    model = identity_model(tmp_path / f"{dtype}.onnx", elem_type)
    before = files_under(tmp_path)
    for argv in (
        ["convert", str(model), "-o", str(tmp_path / "c.tflite")],
        ["quantize", str(model), "-o", str(tmp_path / "q.tflite"), "--mode", "dynamic"],
    ):
        line = one_error_line(capsys, ["-q", *argv])
        assert f"input 'text' of {model} has dtype {dtype}" in line, line
    assert files_under(tmp_path) == before


def test_validate_refuses_a_tflite_with_a_non_numeric_input(tmp_path, capsys):
    """A third-party .tflite (no sidecar) whose input is bool: built by lowering directly, as no edgesep command
    writes one any more."""
    import onnx

    from edgesep.convert.lowering import lower
    from edgesep.convert.tflite import to_tflite_bytes

    model = onnx.load(str(identity_model(tmp_path / "b.onnx", TensorProto.BOOL, name="flags")))
    tflite = tmp_path / "b.tflite"
    tflite.write_bytes(to_tflite_bytes(lower(model)))
    np.save(tmp_path / "x.npy", np.ones((4, 4), dtype=np.float32))
    before = files_under(tmp_path)
    line = one_error_line(
        capsys,
        [
            "-q",
            "validate",
            "--float",
            str(tflite),
            "--quant",
            str(tflite),
            "--data",
            str(tmp_path / "x.npy"),
            "--runs",
            "1",
            "--warmup",
            "0",
        ],
    )
    assert f"input 'flags' of {tflite} has dtype bool" in line, line
    assert files_under(tmp_path) == before


# -- class 4: an image folder where many images do not decode ------------------------------------------------------


def image_folder(folder: Path, *, good: int, bad: int) -> list[Path]:
    """``good`` seeded 16x16 RGB PNGs and ``bad`` files that claim to be images; returns the bad ones."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(good):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"ok{i:02d}.png")
    broken = []
    for i in range(bad):
        path = folder / f"broken{i}.{'png' if i % 2 else 'jpg'}"
        path.write_bytes(b"\x89PNG\r\n\x1a\n not really" if i % 2 else b"\xff\xd8\xff truncated jpeg")
        broken.append(path)
    return broken


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    onnx_path, float_path, int8_path = folder / "m.onnx", folder / "m.tflite", folder / "m_int8.tflite"
    assert main(["-q", "export", TINY, "-o", str(onnx_path)]) == 0
    assert main(["-q", "convert", str(onnx_path), "-o", str(float_path)]) == 0
    assert main(["-q", "quantize", str(onnx_path), "-o", str(int8_path), "--mode", "dynamic"]) == 0
    return onnx_path, float_path, int8_path


def test_calibration_folder_with_too_many_undecodable_images_fails_naming_them(tmp_path, capsys, tiny_models):
    onnx_path = tiny_models[0]
    broken = image_folder(tmp_path / "calib", good=16, bad=4)  # 4 of 20 = 20 % > 10 %
    target = tmp_path / "q.tflite"
    line = one_error_line(
        capsys, ["-q", "quantize", str(onnx_path), "-o", str(target), "--calib", str(tmp_path / "calib"), "--samples", "20"]
    )
    assert "4 of 20 calibration images could not be decoded" in line and "more than 10%" in line, line
    assert sum(str(path) in line for path in broken) == 3 and "and 1 more" in line
    assert not target.exists() and not any(tmp_path.glob(".*tmp"))


def test_calibration_folder_below_the_threshold_warns_naming_the_file(tmp_path, capsys, tiny_models):
    onnx_path = tiny_models[0]
    broken = image_folder(tmp_path / "calib", good=19, bad=1)  # 1 of 20 = 5 %
    target = tmp_path / "q.tflite"
    assert main(["-q", "quantize", str(onnx_path), "-o", str(target), "--calib", str(tmp_path / "calib"), "--samples", "20"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "could not be decoded" in line]
    assert warnings == [f"edgesep: warning: 1 of 20 calibration images could not be decoded: {broken[0]} (skipped; up to 10% may fail)"]
    assert target.is_file()


def test_validation_folder_with_too_many_undecodable_images_fails_naming_them(tmp_path, capsys, tiny_models):
    _, float_path, int8_path = tiny_models
    data = tmp_path / "val"
    broken = image_folder(data / "cats", good=8, bad=1) + image_folder(data / "dogs", good=8, bad=1)  # 2 of 18
    out = tmp_path / "out"
    argv = [
        "-q",
        "validate",
        "--float",
        str(float_path),
        "--quant",
        str(int8_path),
        "--data",
        str(data),
        "--runs",
        "1",
        "--warmup",
        "0",
        "--output-dir",
        str(out),
    ]
    line = one_error_line(capsys, argv)
    assert "2 of 18 validation images could not be decoded" in line and all(str(p) in line for p in broken)
    assert not out.exists()

    broken[1].unlink()  # 1 of 17 = 5.9 %: validated, with a warning naming the file
    assert main(argv) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgesep: warning:")]
    assert len(warnings) == 1 and str(broken[0]) in warnings[0]
