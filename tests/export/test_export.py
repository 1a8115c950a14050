"""Export: PyTorch -> ONNX, checked, simplified and verified in onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgesep.cli.main import main
from edgesep.errors import InputError, OutputExistsError, ShapeError
from edgesep.export import export
from edgesep.fileio import sidecar_path

HERE = Path(__file__).parent
TINY = f"{HERE / 'models_for_tests.py'}:tiny"


def test_export_module_matches_pytorch(tmp_path):
    from models_for_tests import tiny  # noqa: PLC0415  (tests dir is on sys.path under pytest rootdir import mode)

    model = tiny()
    result = export(model, tmp_path / "m.onnx")
    assert result.input_shape == (1, 3, 16, 16)
    assert result.output_shapes == ((1, 5),)
    assert result.fidelity.max_abs < 1e-5
    assert result.fidelity.cosine > 0.999999
    onnx.checker.check_model(str(result.path))
    # independent re-check on a fresh input
    x = np.random.default_rng(7).standard_normal((1, 3, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    sidecar = json.loads(sidecar_path(result.path).read_text())
    assert sidecar["format"] == "onnx" and sidecar["inputs"][0]["shape"] == [1, 3, 16, 16]


def test_export_reference_with_weights_and_dynamic_batch(tmp_path):
    from models_for_tests import tiny

    trained = tiny()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    ckpt = tmp_path / "w.pt"
    torch.save(trained.state_dict(), ckpt)
    result = export(TINY, tmp_path / "m.onnx", weights=ckpt, dynamic_batch=True)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = trained.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x})[0], want, atol=1e-5)


def test_export_torchvision_mobilenet_v3_small(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    result = export(model, tmp_path / "mv3.onnx", input_shape=(1, 3, 224, 224), samples=1)
    assert result.fidelity.max_abs < 1e-4
    assert result.fidelity.top1_agreement == 1.0


def test_refuses_to_overwrite_without_force(tmp_path):
    from models_for_tests import tiny

    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        export(tiny(), out)
    assert out.read_bytes() == b"keep me"
    export(tiny(), out, force=True)
    assert out.stat().st_size > 1000


def test_wrong_input_shape_names_expected_shape(tmp_path):
    from models_for_tests import tiny

    with pytest.raises(ShapeError, match=r"expects \(1, 3, 16, 16\)"):
        export(tiny(), tmp_path / "m.onnx", input_shape=(1, 1, 16, 16))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (f"{HERE / 'models_for_tests.py'}:not_a_module", "not a torch.nn.Module"),
        (f"{HERE / 'models_for_tests.py'}:exploding", "factory .* failed: ValueError: boom"),
        (f"{HERE / 'missing.py'}:tiny", "model file not found"),
        ("no_such_package.models:net", "cannot import module"),
        ("just_a_name", "is not understood"),
    ],
)
def test_bad_references(tmp_path, reference, message):
    with pytest.raises(InputError, match=message):
        export(reference, tmp_path / "m.onnx")
    assert not any(tmp_path.iterdir())


def test_pickled_checkpoint_is_refused(tmp_path):
    from models_for_tests import tiny

    ckpt = tmp_path / "evil.pt"
    torch.save({"state_dict": tiny().state_dict(), "extra": Path("x")}, ckpt)  # Path needs arbitrary unpickling
    with pytest.raises(InputError, match="weights_only=True"):
        export(TINY, tmp_path / "m.onnx", weights=ckpt)
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_and_errors(tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", TINY, "-o", str(out)]) == 0
    assert "max-abs" in capsys.readouterr().out
    assert main(["export", TINY, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("edgesep: error:") and "--force" in err and len(err.strip().splitlines()) == 1
    assert main(["export", TINY, "-o", str(out), "--force", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["fidelity"]["max_abs"] < 1e-5
    assert main(["export", TINY, "-o", str(tmp_path / "x.onnx"), "--input-shape", "1,2,16,16"]) == 2
    assert "expects (1, 3, 16, 16)" in capsys.readouterr().err
