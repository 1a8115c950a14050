"""`edgesep prune` and pruned checkpoints (weights_only=True round trip)."""

from __future__ import annotations

import json

import numpy as np
import torch

from edgesep.cli.main import main
from edgesep.prune.checkpoint import is_pruned_checkpoint, load_pruned, read_checkpoint

FACTORY = "edgesep.models.sepcnn:sepcnn"


def test_cli_prunes_and_checkpoint_reloads_with_weights_only(tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert main(["prune", FACTORY, "-o", str(out), "--ratio", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept_channels"]["features.2.pointwise"] == [64, 32]
    assert report["params_after"] == 2858
    payload = torch.load(out, weights_only=True)
    assert payload["architecture"]["classifier"] == {"type": "Linear", "in": 32, "out": 10}
    model = load_pruned(out)
    assert model.input_shape == (1, 1, 16, 16)
    assert sum(p.numel() for p in model.parameters()) == 2858
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((3, 1, 16, 16)).astype(np.float32))
    state = payload["state_dict"]
    assert torch.equal(model.state_dict()["classifier.weight"], state["classifier.weight"])
    with torch.no_grad():
        assert model(x).shape == (3, 10)


def test_cli_reprunes_a_pruned_checkpoint(tmp_path, capsys):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    assert main(["prune", FACTORY, "-o", str(first), "--ratio", "0.5"]) == 0
    assert "features.2.pointwise" in capsys.readouterr().out  # the rich table
    assert main(["prune", str(first), "-o", str(second), "--ratio", "0.5", "--round-to", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept_channels"]["features.2.pointwise"] == [32, 16]
    assert read_checkpoint(second)["architecture"]["classifier"]["in"] == 16
    assert read_checkpoint(second)["source"] == FACTORY


def test_cli_bad_ratio_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert main(["prune", FACTORY, "-o", str(out), "--ratio", "1.5"]) == 2
    assert "ratio must be in (0, 1)" in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    out.write_bytes(b"keep me")
    assert main(["prune", FACTORY, "-o", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["prune", FACTORY, "-o", str(out), "--force", "--json"]) == 0
    assert is_pruned_checkpoint(out)


def test_plain_state_dict_is_not_a_pruned_checkpoint(tmp_path):
    from edgesep.models.sepcnn import sepcnn

    path = tmp_path / "plain.pt"
    torch.save(sepcnn().state_dict(), path)
    assert not is_pruned_checkpoint(path)
    assert main(["prune", str(path), "-o", str(tmp_path / "x.pt")]) == 2


def test_cli_finetunes_on_user_npz_and_rejects_bad_npz(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 1, 16, 16)).astype(np.float32)
    y = (x[:, 0, :8].mean(axis=(1, 2)) > x[:, 0, 8:].mean(axis=(1, 2))).astype(np.int64)  # learnable labels
    good = tmp_path / "data.npz"
    np.savez(good, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    out = tmp_path / "p.pt"
    args = ["prune", FACTORY, "-o", str(out), "--finetune", "1", "--data", str(good), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy_after"] is not None and 0.0 <= report["accuracy_after"] <= 1.0
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x, y_train=y)
    assert main(["prune", FACTORY, "-o", str(tmp_path / "q.pt"), "--finetune", "1", "--data", str(bad)]) == 2
    assert "lacks x_test, y_test" in capsys.readouterr().err
    assert not (tmp_path / "q.pt").exists()
