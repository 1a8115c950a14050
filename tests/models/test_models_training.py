"""The trained digits default: accuracy, caching, determinism, and `edgesep train`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgesep.cli.main import main
from edgesep.data.digits import load_digits_split
from edgesep.models import default
from edgesep.models.training import TrainConfig, evaluate_accuracy, train_classifier


def test_default_model_reaches_97_percent(default_model):
    split = load_digits_split()
    assert default_model.input_shape == (1, 1, 16, 16)
    assert not default_model.training
    accuracy = evaluate_accuracy(default_model, split.x_test, split.y_test)
    assert accuracy >= 0.97
    meta = torch.load(default.default_checkpoint_path(), weights_only=True)["meta"]
    assert meta["result"]["test_accuracy"] == pytest.approx(accuracy)
    assert meta["train"]["seed"] == 0


def test_default_model_loads_from_cache(default_model):
    path = default.default_checkpoint_path()
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    again = default.load_default_model()
    for (name, a), b in zip(default_model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESEP_CACHE", str(tmp_path))
    path = default.default_checkpoint_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    calls = []
    monkeypatch.setattr(default, "train_default", lambda: calls.append(1) or _tiny_trained())
    model = default.load_default_model()
    assert calls == [1] and model.input_shape == (1, 1, 16, 16)
    assert "state_dict" in torch.load(path, weights_only=True)


def _tiny_trained():
    from edgesep.models.sepcnn import sepcnn
    from edgesep.models.training import TrainResult

    return sepcnn(), TrainResult(test_accuracy=0.0, train_seconds=0.0, epochs=0, final_loss=0.0)


def test_training_is_deterministic():
    split = load_digits_split()
    small = type(split)(split.x_train[:256], split.y_train[:256], split.x_test[:100], split.y_test[:100])
    config = TrainConfig(epochs=2, batch_size=32, seed=3)
    weights = []
    for _ in range(2):
        torch.manual_seed(3)
        from edgesep.models.sepcnn import sepcnn

        model = sepcnn()
        result = train_classifier(model, small, config=config)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]).numpy())
        assert result.epochs == 2 and np.isfinite(result.final_loss)
    np.testing.assert_array_equal(weights[0], weights[1])


def test_train_config_rejects_nonsense():
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)


def test_cli_train_writes_checkpoint_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "sepcnn.pt"
    code = main(["-q", "train", "-o", str(out), "--epochs", "3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs"] == 3 and report["test_accuracy"] >= 0.9
    from edgesep.models.loading import load_weights
    from edgesep.models.sepcnn import sepcnn

    model = sepcnn()
    load_weights(model, out)
    split = load_digits_split()
    assert evaluate_accuracy(model, split.x_test, split.y_test) == pytest.approx(report["test_accuracy"])
    assert main(["train", "-o", str(out), "--epochs", "1"]) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_train_text_output_with_force(tmp_path, capsys):
    out = tmp_path / "one.pt"
    out.write_bytes(b"old")
    assert main(["-q", "train", "-o", str(out), "--epochs", "1", "--force"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("test accuracy ") and "after 1 epochs" in text
    accuracy = float(text.split()[2])
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["result"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-4) and meta["train"]["epochs"] == 1
