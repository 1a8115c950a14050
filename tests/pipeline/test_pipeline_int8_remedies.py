"""`edgesep run` with [quantize] equalize / bias_correction / activation_range: the PyTorch model behind
the export reaches the quantize step, and the remedies show in the int8 sidecar and the numbers."""

from __future__ import annotations

import json

from edgesep.cli.main import main

CONFIG = """\
output = "out"
devices = ["local"]

[model]
factory = "default"
input_shape = [1, 1, 16, 16]

[calibration]
source = "digits"
samples = 200

[quantize]
modes = ["int8"]
per_channel = false
equalize = true
bias_correction = "empirical"
activation_range = "mse"

[validate]
data = "digits"
runs = 3
warmup = 1
"""


def test_equalize_and_bias_correction_from_the_config(tmp_path, capsys):
    config = tmp_path / "p.toml"
    config.write_text(CONFIG)
    assert main(["-q", "run", str(config), "--json"]) == 0
    rows = {row["variant"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    sidecar = json.loads((tmp_path / "out" / "model_int8.tflite.json").read_text())
    recipe, prepared = sidecar["recipe"], sidecar["quantization"]["prepared"]
    assert recipe["equalize"] is True and recipe["bias_correction"] == "empirical"
    assert recipe["activation_range"] == "mse" and recipe["per_channel"] is False
    assert len(prepared["equalization"]["pairs"]) == 7  # stem->dw, dw->pw, pw->dw, ..., pw->classifier
    assert prepared["bias_correction"]["method"] == "empirical" and len(prepared["bias_correction"]["layers"]) == 8
    assert rows["int8"]["accuracy"] >= rows["float32"]["accuracy"] - 0.6  # per-tensor, yet within a point
    assert rows["int8"]["agreement"] >= 98.0 and rows["int8"]["cosine"] > 0.999


def test_remedies_need_a_pytorch_model(tmp_path, capsys):
    config = tmp_path / "p.toml"
    config.write_text(CONFIG.replace('factory = "default"', 'onnx = "model.onnx"'))
    assert main(["-q", "run", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p.toml:" in err[0] and "give model.factory" in err[0], err
    assert not (tmp_path / "out").exists()
