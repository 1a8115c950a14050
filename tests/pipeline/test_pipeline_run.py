"""`edgesep run` end to end on the digits example: artifacts, numbers in summary.json, cached re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgesep.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    config = folder / "digits.toml"
    text = (EXAMPLES / "digits.toml").read_text()
    config.write_text(text.replace("runs = 30", "runs = 5"))
    code = main(["-q", "run", str(config), "--json"])
    return folder, config, code


def test_digits_pipeline_artifacts_and_numbers(digits_run, capsys):
    folder, _, code = digits_run
    assert code == 0
    out = folder / "out-digits"
    for name in (
        "model.onnx",
        "model_float32.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
        "model_int8.tflite.json",
        "report.md",
        "report.html",
        "accuracy_vs_latency.png",
        "summary.json",
        "state.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "validate" / "local" / "int8" / "report.md").is_file()
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["variant"]: row for row in summary["rows"]}
    assert set(rows) == {"float32", "float16", "dynamic", "int8"}
    assert rows["float32"]["accuracy"] >= 97.0  # the trained default on the held-out split
    assert abs(rows["int8"]["accuracy"] - rows["float32"]["accuracy"]) <= 0.5
    assert rows["int8"]["agreement"] >= 98.0 and rows["int8"]["cosine"] > 0.999
    assert rows["float16"]["cosine"] > 0.99999
    assert rows["int8"]["size_kb"] < 0.6 * rows["float32"]["size_kb"]
    assert rows["float32"]["samples"] == 360  # the whole digits test split
    assert all(row["p50_ms"] > 0 for row in rows.values())
    recipe = json.loads((out / "model_int8.tflite.json").read_text())["recipe"]
    assert recipe["mode"] == "int8" and recipe["per_channel"] is True


def test_rerun_skips_unchanged_steps_and_revalidates_on_device_change(digits_run, capsys):
    folder, config, _ = digits_run
    out = folder / "out-digits"
    int8_mtime = (out / "model_int8.tflite").stat().st_mtime_ns
    assert main(["-q", "run", str(config), "--json"]) == 0
    steps = {s["name"]: s["status"] for s in json.loads(capsys.readouterr().out)["steps"]}
    assert set(steps.values()) == {"skipped"}, steps
    assert (out / "model_int8.tflite").stat().st_mtime_ns == int8_mtime

    config.write_text(config.read_text().replace("runs = 5", "runs = 4"))  # only validation settings changed
    assert main(["-q", "run", str(config), "--json"]) == 0
    steps = {s["name"]: s["status"] for s in json.loads(capsys.readouterr().out)["steps"]}
    assert steps.pop("validate-local") == "ran"
    assert set(steps.values()) == {"skipped"}, steps


def test_fail_if_drop_gate_and_only_step(digits_run, capsys):
    folder, config, _ = digits_run
    # a gate nobody can pass (negative drop allowed) -> exit 1, artifacts kept
    assert main(["-q", "run", str(config), "--fail-if-drop", "-100"]) == 1
    assert "accuracy dropped" in capsys.readouterr().err
    assert (folder / "out-digits" / "summary.json").is_file()
    assert main(["-q", "run", str(config), "--only", "nonsense"]) == 2


def test_until_stops_after_a_step(digits_run, capsys):
    """--until convert: export and convert (cached here), no quantize or validate step and no rows (edgesep farm's
    prepare stage); --until quantize: no validate."""
    _, config, _ = digits_run
    assert main(["-q", "run", str(config), "--until", "convert", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in payload["steps"]] == ["export", "convert"] and payload["rows"] == []
    assert main(["-q", "run", str(config), "--until", "quantize", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)["steps"]]
    assert names == ["export", "convert", "quantize-float16", "quantize-dynamic", "quantize-int8"]
    assert main(["-q", "run", str(config), "--until", "nonsense"]) == 2
    assert "--until 'nonsense' is not a step" in capsys.readouterr().err


def test_failing_step_keeps_earlier_artifacts(tmp_path, capsys):
    bad_data = tmp_path / "calib.npy"
    bad_data.write_bytes(b"not an array")
    config = tmp_path / "p.toml"
    config.write_text('output = "out"\n[model]\nfactory = "default"\n[calibration]\nsource = "calib.npy"\n[quantize]\nmodes = ["int8"]\n')
    assert main(["-q", "run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "step 'quantize-int8' failed" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert (tmp_path / "out" / "model_float32.tflite").is_file()
    assert not (tmp_path / "out" / "model_int8.tflite").exists()


def test_damaged_artifact_or_edited_data_reruns_the_right_steps(tmp_path, capsys):
    """#14 class 6: state.json records each artifact's content hash: a damaged artifact re-runs its step
    (instead of failing the next one on every re-run), and the validate step's key covers its data file."""
    import numpy as np

    from edgesep.data.digits import load_digits_split

    split = load_digits_split()
    np.savez(tmp_path / "val.npz", x=split.x_test[:60], y=split.y_test[:60])
    config = tmp_path / "p.toml"
    config.write_text('output = "out"\ndevices = ["local"]\n[model]\nfactory = "default"\n[quantize]\nmodes = ["int8"]\n'
                      '[validate]\ndata = "val.npz"\nruns = 2\nwarmup = 1\n')  # fmt: skip

    def steps():
        assert main(["-q", "run", str(config), "--json"]) == 0
        return {s["name"]: s["status"] for s in json.loads(capsys.readouterr().out)["steps"]}

    assert set(steps().values()) == {"ran"}
    model = tmp_path / "out" / "model_int8.tflite"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # damaged on disk
    digest = json.loads((tmp_path / "out" / "state.json").read_text())["steps"]["quantize-int8"]["digests"]
    # quantize re-runs and rebuilds the same bytes, so validate's inputs are unchanged and its results stand
    assert steps() == {"export": "skipped", "convert": "skipped", "quantize-int8": "ran", "validate-local": "skipped"}
    assert json.loads((tmp_path / "out" / "state.json").read_text())["steps"]["quantize-int8"]["digests"] == digest
    np.savez(tmp_path / "val.npz", x=split.x_test[:40], y=split.y_test[:40])  # the data edited
    assert steps() == {"export": "skipped", "convert": "skipped", "quantize-int8": "skipped", "validate-local": "ran"}
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["rows"]
    assert {row["samples"] for row in rows} == {40}
