"""`edgesep run` with [prune] and [distill] before export: the exported model is the shrunk one, steps are cached."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

# torch's optimizers import torch._dynamo, which imports triton; triton's C extension segfaults when it is
# first imported after TensorFlow (loaded by earlier pipeline tests). Import it at collection, before TF.
import torch._dynamo  # noqa: F401,E402

from edgesep.cli.main import main

CONFIG = """\
output = "out"
devices = ["local"]
[model]
factory = "default"
[quantize]
modes = ["int8"]
input_type = "float32"
[validate]
runs = 3
warmup = 1
[prune]
ratio = 0.5
criterion = "l1"
finetune_epochs = 0
[distill]
teacher = "edgesep.models.default:load_default_model"   # the trained unpruned SepCNN: cached, no training
epochs = 1
temperature = 4.0
alpha = 0.7
"""
# Prune 50 % without fine-tuning + one distillation epoch lands at 79.4 % on an AVX2 host and 65.6 % on an
# AVX-512 one: the trajectory depends on the CPU's float kernels. What holds on every CPU: the shrunk model is a
# classifier (far above the 10 % of chance) and int8 keeps what float32 has.
CHANCE = 10.0


def _steps(capsys) -> dict[str, str]:
    return {s["name"]: s["status"] for s in json.loads(capsys.readouterr().out)["steps"]}


@pytest.fixture(scope="module")
def shrink_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shrink")
    config = folder / "p.toml"
    config.write_text(CONFIG)
    code = main(["-q", "run", str(config), "--json"])
    # the rerun test edits the config and re-runs into out/: the other tests read this copy of the first run,
    # so they hold in any order (pytest -p randomly)
    shutil.copytree(folder / "out", folder / "first-run")
    return folder, config, code


def test_exported_model_is_the_pruned_distilled_one(shrink_run):
    import onnx
    import onnxruntime as ort
    import torch

    from edgesep.prune.checkpoint import load_pruned, read_checkpoint
    from edgesep.prune.cost import count_params

    folder, _, code = shrink_run
    assert code == 0
    out = folder / "first-run"
    state = json.loads((out / "state.json").read_text())["steps"]
    pruned = state["prune"]["result"]
    assert pruned["kept_channels"] == {
        "features.0.0": [16, 8],
        "features.1.pointwise": [32, 16],
        "features.2.pointwise": [64, 32],
        "features.3.pointwise": [64, 32],
    }
    assert (pruned["params_before"], pruned["params_after"]) == (9034, 2858)
    assert pruned["macs_after"] < 0.4 * pruned["macs_before"]
    assert len(state["distill"]["result"]["losses"]) == 1

    student = load_pruned(out / "model_distilled.pt")  # weights_only=True inside
    assert read_checkpoint(out / "model_distilled.pt")["source"] == "edgesep.models.default:load_default_model"
    assert count_params(student) == 2858
    graph = onnx.load(out / "model.onnx").graph
    weights = {i.name: tuple(i.dims) for i in graph.initializer}
    onnx_convs = sorted(weights[n.input[1]][0] for n in graph.node if n.op_type == "Conv")
    torch_convs = sorted(m.out_channels for m in student.modules() if isinstance(m, torch.nn.Conv2d))
    assert onnx_convs == torch_convs and max(onnx_convs) == 32

    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        torch_out = student(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(onnx_out - torch_out)) < 1e-4


def test_summary_accuracy_of_the_shrunk_model(shrink_run):
    folder, _, _ = shrink_run
    rows = {r["variant"]: r for r in json.loads((folder / "first-run" / "summary.json").read_text())["rows"]}
    assert set(rows) == {"float32", "int8"}
    assert rows["float32"]["accuracy"] > 3 * CHANCE
    assert abs(rows["int8"]["accuracy"] - rows["float32"]["accuracy"]) <= 3.0
    assert rows["int8"]["agreement"] >= 97.0 and rows["int8"]["cosine"] > 0.995
    assert rows["float32"]["samples"] == 360


def test_rerun_skips_and_edits_rerun_the_right_steps(shrink_run, capsys):
    folder, config, _ = shrink_run
    capsys.readouterr()
    assert main(["-q", "run", str(config), "--json"]) == 0
    steps = _steps(capsys)
    assert list(steps)[:3] == ["prune", "distill", "export"]
    assert set(steps.values()) == {"skipped"}, steps

    config.write_text(CONFIG.replace("runs = 3", "runs = 2"))  # validation settings only
    assert main(["-q", "run", str(config), "--json"]) == 0
    steps = _steps(capsys)
    assert steps.pop("validate-local") == "ran" and set(steps.values()) == {"skipped"}, steps

    pruned_before = (folder / "out" / "model_pruned.pt").read_bytes()
    config.write_text(CONFIG.replace("ratio = 0.5", "ratio = 0.25").replace("runs = 3", "runs = 2"))
    assert main(["-q", "run", str(config), "--json"]) == 0
    steps = _steps(capsys)
    assert set(steps.values()) == {"ran"}, steps  # prune, distill, export and everything after
    assert (folder / "out" / "model_pruned.pt").read_bytes() != pruned_before
    kept = json.loads((folder / "out" / "state.json").read_text())["steps"]["prune"]["result"]["kept_channels"]
    assert kept["features.2.pointwise"] == [64, 48]


def test_bad_prune_section_is_one_config_error(tmp_path, capsys):
    config = tmp_path / "p.toml"
    config.write_text(CONFIG.replace("ratio = 0.5", "ratio = 1.5"))
    assert main(["-q", "run", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p.toml:" in err[0] and "ratio must be in (0, 1)" in err[0]
    assert not (tmp_path / "out").exists()
    onnx_config = tmp_path / "q.toml"
    onnx_config.write_text('[model]\nonnx = "m.onnx"\n[prune]\nratio = 0.5\n')
    assert main(["-q", "run", str(onnx_config)]) == 2
    assert "need a PyTorch model" in capsys.readouterr().err
