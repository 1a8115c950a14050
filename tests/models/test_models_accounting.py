"""Parameter/MAC accounting equals the closed forms exactly; ONNX and PyTorch agree; `edgesep inspect`."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import torch
from torch import nn

from edgesep.cli.main import main
from edgesep.models.accounting import count_model, count_module
from edgesep.models.blocks import DepthwiseSeparableConv2d


def hand_built() -> nn.Module:
    """Conv 3->8 k3 s2 (+bias) + BN, separable 8->16 k5 s2 (+BNs), pool, Linear 16->4; input 1x3x20x20."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        DepthwiseSeparableConv2d(8, 16, kernel_size=5, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )
    model.input_shape = (1, 3, 20, 20)
    return model


def test_hand_built_net_matches_closed_forms():
    acc = count_model(hand_built())
    rows = {row.name: row for row in acc.layers}
    # conv: K^2*C*M + M bias; 20x20 stride 2 -> 10x10; MACs K^2*C*M*H*W
    assert (rows["0"].params, rows["0"].macs, rows["0"].output_shape) == (9 * 3 * 8 + 8, 9 * 3 * 8 * 10 * 10, (1, 8, 10, 10))
    assert (rows["1"].params, rows["1"].macs) == (2 * 8, 0)
    # depthwise 5x5 over 8 channels, 10x10 stride 2 -> 5x5
    assert (rows["3.depthwise"].params, rows["3.depthwise"].macs, rows["3.depthwise"].groups) == (25 * 8, 25 * 8 * 5 * 5, 8)
    assert rows["3.depthwise_bn"].params == 16
    assert (rows["3.pointwise"].params, rows["3.pointwise"].macs) == (8 * 16, 8 * 16 * 5 * 5)
    assert rows["3.pointwise_bn"].params == 32
    assert (rows["6"].params, rows["6"].macs) == (16 * 4 + 4, 16 * 4)
    assert acc.total_params == 224 + 16 + 200 + 16 + 128 + 32 + 68 == 684
    assert acc.total_params == sum(p.numel() for p in hand_built().parameters())
    assert acc.total_macs == 21600 + 5000 + 3200 + 64 == 29864
    assert sum(row.params for row in acc.layers) == acc.total_params


def test_separable_pair_standard_equivalent_and_ratio():
    (pair,) = count_model(hand_built()).pairs
    assert (pair.depthwise, pair.pointwise) == ("3.depthwise", "3.pointwise")
    assert (pair.kernel, pair.in_channels, pair.out_channels, pair.output_hw) == ((5, 5), 8, 16, (5, 5))
    assert pair.standard_params == 25 * 8 * 16 == 3200
    assert pair.standard_macs == 25 * 8 * 16 * 5 * 5 == 80000
    assert pair.params == 25 * 8 + 8 * 16 and pair.macs == (25 * 8 + 8 * 16) * 25
    assert pair.exact_ratio == Fraction(1, 16) + Fraction(1, 25) == Fraction(pair.macs, pair.standard_macs)
    assert pair.saving == pytest.approx(1 / 0.1025)


@pytest.mark.parametrize("c, m, k, stride, size", [(4, 7, 3, 1, 9), (12, 5, 5, 2, 11), (3, 32, 7, 1, 8), (6, 6, 3, 3, 10)])
def test_ratio_is_one_over_m_plus_one_over_k_squared(c, m, k, stride, size):
    block = DepthwiseSeparableConv2d(c, m, kernel_size=k, stride=stride, batch_norm=False)
    acc = count_module(block, (2, c, size, size))
    (pair,) = acc.pairs
    out = (size + 2 * ((k - 1) // 2) - k) // stride + 1
    assert pair.output_hw == (out, out) and pair.batch == 2
    assert pair.standard_params == k * k * c * m
    assert pair.standard_macs == k * k * c * m * out * out * 2
    assert pair.exact_ratio == Fraction(1, m) + Fraction(1, k * k)
    assert acc.total_macs == pair.macs  # batch 2 doubles every MAC
    assert acc.total_params == k * k * c + c + c * m + m


def test_squeeze_excitation_convs_are_skipped_when_pairing():
    class SEBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.fc1, self.fc2 = nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1)
            self.pw = nn.Conv2d(8, 12, 1)

        def forward(self, x):
            x = self.dw(x)
            s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
            return self.pw(x * s)

    (pair,) = count_module(SEBlock(), (1, 8, 6, 6)).pairs
    assert (pair.depthwise, pair.pointwise, pair.out_channels) == ("dw", "pw", 12)


def test_onnx_and_pytorch_totals_agree_on_sepcnn(default_model, tmp_path):
    from edgesep.export import export

    torch_acc = count_model(default_model)
    export(default_model, tmp_path / "sepcnn.onnx")
    onnx_acc = count_model(tmp_path / "sepcnn.onnx")
    assert onnx_acc.input_shape == torch_acc.input_shape == (1, 1, 16, 16)
    assert onnx_acc.total_macs == torch_acc.total_macs == 191_616
    assert onnx_acc.total_weights == torch_acc.total_weights
    assert [(p.params, p.standard_params, p.macs, p.standard_macs) for p in onnx_acc.pairs] == [
        (p.params, p.standard_params, p.macs, p.standard_macs) for p in torch_acc.pairs
    ]
    # each BatchNorm (2C params) folds into a C-element conv bias
    bn_channels = sum(m.num_features for m in default_model.modules() if isinstance(m, nn.BatchNorm2d))
    assert onnx_acc.total_params == torch_acc.total_params - bn_channels


def test_cli_inspect_json_and_table(capsys):
    assert main(["inspect", "edgesep.models.sepcnn:sepcnn", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_params"] == 9034 and report["total_macs"] == 191_616
    assert len(report["pairs"]) == 3 and report["pairs"][0]["ratio"] == pytest.approx(1 / 32 + 1 / 9)
    assert main(["inspect", "edgesep.models.sepcnn:sepcnn"]) == 0
    text = capsys.readouterr().out
    assert "9,034" in text and "191,616" in text and "features.1.depthwise -> features.1.pointwise" in text


def test_cli_inspect_torchvision_mobilenet_v3_small(capsys):
    torchvision = pytest.importorskip("torchvision")
    args = ["inspect", "torchvision.models:mobilenet_v3_small", "--input-shape", "1,3,224,224", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_params"] == sum(p.numel() for p in torchvision.models.mobilenet_v3_small().parameters())
    assert report["total_macs"] == 56_510_400  # torchvision documents 0.06 GFLOPS
    assert len(report["pairs"]) == 11


def test_cli_inspect_compare(default_model, capsys, tmp_path):
    wide = write(tmp_path / "wide.py", "from edgesep.models.sepcnn import SepCNN\ndef build():\n    return SepCNN(width_mult=2.0)\n")
    assert main(["inspect", "default", "--compare", f"{wide}:build", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["a"]["total_params"] == 9034
    # width 2: stem 9*32+64, blocks 32->64, 64->128, 128->128, linear 128*10+10
    blocks = sum(9 * c + 2 * c + c * m + 2 * m for c, m in [(32, 64), (64, 128), (128, 128)])
    assert report["b"]["total_params"] == 9 * 32 + 64 + blocks + 1290
    assert main(["inspect", "default", "--compare", f"{wide}:build"]) == 0
    text = capsys.readouterr().out
    assert "9,034" in text and f"{report['b']['total_params']:,}" in text and "B / A" in text


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.onnx"], "not found"),
        (["nowhere/model.py:build"], "model file not found: nowhere/model.py"),
        (["edgesep.models.sepcnn"], "not understood"),
        (["edgesep.models.sepcnn:sepcnn", "--input-shape", "1,3,16,16"], "does not fit"),
    ],
)
def test_cli_inspect_bad_input_exits_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("edgesep: error:")


def test_cli_inspect_factory_not_a_module(tmp_path, capsys):
    source = write(tmp_path / "factory.py", "def build():\n    return 42\n")
    assert main(["inspect", f"{source}:build"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a torch.nn.Module" in err


def test_cli_inspect_onnx_with_symbolic_batch(tmp_path, capsys):
    from edgesep.models.sepcnn import sepcnn

    path = tmp_path / "dyn.onnx"
    model = sepcnn().eval()
    torch.onnx.export(
        model, torch.zeros(1, 1, 16, 16), str(path), dynamo=False, input_names=["x"],
        dynamic_axes={"x": {0: "n"}}, opset_version=17,
    )  # fmt: skip
    assert main(["inspect", str(path), "--input-shape", "4,1,16,16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_macs"] == 4 * 191_616 and report["input_shape"] == [4, 1, 16, 16]
    assert main(["inspect", str(path), "--input-shape", "4,3,16,16"]) == 2
    assert "expects" in capsys.readouterr().err


def test_cli_inspect_wrong_channels_names_expected_channels(capsys):
    pytest.importorskip("torchvision")
    assert main(["inspect", "torchvision.models:mobilenet_v3_small", "--input-shape", "1,1,64,64"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expects 3 input channels" in err


def test_cli_inspect_without_declared_shape_asks_for_one(tmp_path, capsys):
    source = write(tmp_path / "plain.py", "from torch import nn\ndef build():\n    return nn.Conv2d(3, 4, 3)\n")
    assert main(["inspect", f"{source}:build"]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert main(["inspect", f"{source}:build", "--input-shape", "1,3,5,5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["total_params"], report["total_macs"]) == (9 * 3 * 4 + 4, 9 * 3 * 4 * 3 * 3)


def test_cli_inspect_with_weights(tmp_path, capsys):
    from edgesep.models.sepcnn import sepcnn

    checkpoint = tmp_path / "w.pt"
    torch.save(sepcnn().state_dict(), checkpoint)
    assert main(["inspect", "edgesep.models.sepcnn:sepcnn", "--weights", str(checkpoint), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 9034
    wide = write(tmp_path / "wide.py", "from edgesep.models.sepcnn import SepCNN\ndef build():\n    return SepCNN(width_mult=2.0)\n")
    assert main(["inspect", f"{wide}:build", "--weights", str(checkpoint)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "do not fit" in err


def test_onnx_accounting_of_mobilenet_v2_matches_pytorch(tmp_path):
    from edgesep.models.mobilenet import MobileNetV2

    torch.manual_seed(0)
    model = MobileNetV2(width_mult=0.35, input_size=64, num_classes=10).eval()
    path = tmp_path / "v2.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(path), dynamo=False, opset_version=17)
    torch_acc, onnx_acc = count_model(model), count_model(path)
    assert onnx_acc.total_macs == torch_acc.total_macs
    assert onnx_acc.total_weights == torch_acc.total_weights
    assert len(onnx_acc.pairs) == len(torch_acc.pairs) == 17
    assert [p.standard_macs for p in onnx_acc.pairs] == [p.standard_macs for p in torch_acc.pairs]
    assert {layer.type for layer in onnx_acc.layers} == {"Conv", "Gemm"}  # Clip bounds are not parameters
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    # per node, every folded conv carries its own bias even where the exporter shares identical (zero) tensors
    assert sum(layer.params for layer in onnx_acc.layers) == torch_acc.total_params - bn_channels
    assert onnx_acc.total_params <= torch_acc.total_params - bn_channels
