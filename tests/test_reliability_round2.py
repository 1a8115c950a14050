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
    for folder in (onnx_dir, tflite_dir, weights_dir):
        folder.mkdir()
    cases = [
        (["inspect", str(onnx_dir)], f"ONNX model {onnx_dir} is a folder, not a file"),
        (["quantize", str(onnx_dir), "-o", str(tmp_path / "q.tflite"), "--mode", "dynamic"],
         f"{onnx_dir} is a folder"),
        (["bench", str(tflite_dir), "--runs", "1"], f"model {tflite_dir} is a folder, not a file"),
        (["validate", "--float", str(tflite_dir), "--quant", str(tflite_dir), "--data", "digits"], f"model {tflite_dir} is a folder"),
        (["export", TINY, "--weights", str(weights_dir), "-o", str(tmp_path / "e.onnx")],
         f"weights file {weights_dir} is a folder, not a file"),
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
    config.write_text(f'output = "out"\ndevices = ["local"]\n[model]\nonnx = "{onnx_model}"\n'
                      '[quantize]\nmodes = ["int8"]\n')
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
