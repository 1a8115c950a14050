"""Output-based sensitivity (#13): a layer broken on purpose (one output channel scaled up 1000x, undone by the
layer that reads it, so float is unaffected while int8 of that activation loses every other channel). The
damage happens where the bad tensor is quantized for its reader: the reader ranks first by the damage to the
output, and the greedy fallback then finds the broken layer itself; both end up float in the written
flatbuffer and the output is repaired."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesep.quantize.sensitivity import task_metric
from edgesep.runners.tflite import ModelRun


def _broken_net() -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()]
    for _ in range(2):
        layers += [torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()]
    layers += [torch.nn.Conv2d(8, 4, 3, padding=1)]  # a map output (a detector's head)
    net = torch.nn.Sequential(*layers).eval()
    with torch.no_grad():
        broken, after = net[4], net[6]  # the third conv, and the conv that reads it
        broken.weight[0] *= 1000.0
        broken.bias[0] *= 1000.0
        after.weight[:, 0] /= 1000.0
    net.input_shape = (1, 3, 16, 16)
    return net


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    from edgesep.data.synthetic import image_like_inputs
    from edgesep.export import export

    folder = tmp_path_factory.mktemp("sensitivity")
    onnx = export(_broken_net(), folder / "broken.onnx").path
    np.save(folder / "calib.npy", image_like_inputs((80, 3, 16, 16), seed=1))
    return folder, onnx


def test_the_broken_layer_pair_is_found_by_the_output_and_kept_float(broken):
    from ai_edge_litert.interpreter import Interpreter

    from edgesep.quantize import quantize
    from edgesep.quantize.recipe import QuantRecipe

    folder, onnx = broken
    result = quantize(onnx, folder / "q.tflite", recipe=QuantRecipe(mode="int8", samples=64),
                      calibration=str(folder / "calib.npy"), holdout=16, auto_fallback=2, metric="cosine")  # fmt: skip
    broken_layer = max(result.layers, key=lambda layer: layer.value_range).name  # the huge channel's conv
    reader = result.sensitivity[0]
    assert reader.op == "CONV_2D" and reader.gain > 0 and all(s.gain <= 0 for s in result.sensitivity[1:])
    assert result.recipe.keep_float == (reader.name, broken_layer)
    dtypes = {d["name"]: d["dtype"] for d in Interpreter(model_path=str(folder / "q.tflite")).get_tensor_details()}
    assert dtypes[reader.name] == np.float32 and dtypes[broken_layer] == np.float32  # float in the written model
    int8_variant = next(v for v in result.variants if v.name == "int8")
    assert int8_variant.fidelity.cosine < 0.97 and result.fidelity.cosine > 0.999  # repaired


@pytest.mark.parametrize(
    "name,reference,candidate,expected",
    [
        ("cosine", [[1.0, 0.0]], [[0.0, 1.0]], 0.0),
        ("top1", [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]], 0.5),
        ("iou@0.5", [[0.9, 0.9, 0.1, 0.1]], [[0.9, 0.1, 0.9, 0.1]], 1 / 3),
        ("iou@0.5", [[0.1, 0.1]], [[0.9, 0.9]], 1.0),  # nothing to find in the float map: skipped
        # mean: (1/1 + 1/3) / 2; pooled: (1 + 1) / (1 + 3)
        ("iou@0.5", [[0.9, 0.1, 0.1, 0.1], [0.9, 0.9, 0.1, 0.1]], [[0.9, 0.1, 0.1, 0.1], [0.9, 0.1, 0.9, 0.1]], 2 / 3),
        ("piou@0.5", [[0.9, 0.1, 0.1, 0.1], [0.9, 0.9, 0.1, 0.1]], [[0.9, 0.1, 0.1, 0.1], [0.9, 0.1, 0.9, 0.1]], 0.5),
    ],
)
def test_task_metrics(name, reference, candidate, expected):
    def run(values):
        return ModelRun(outputs=(np.asarray(values, np.float32),), latency_ms=0.0)

    assert task_metric(name)(run(reference), run(candidate)) == pytest.approx(expected)


def test_unknown_metric_is_a_config_error():
    from edgesep.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        task_metric("auc")
    with pytest.raises(ConfigError, match="iou@THRESHOLD"):
        task_metric("iou@x")


def _page(boxes, *, size=40, value=0.9):
    """A (1, size, size, 1) probability map with a bright rectangle per (top, left, bottom, right) box."""
    page = np.full((size, size), 0.05, np.float32)
    for top, left, bottom, right in boxes:
        page[top:bottom, left:right] = value
    return page[None, :, :, None]


def test_box_agreement_finds_text_boxes_as_db_post_processing_does():
    from edgesep.quantize.map_metrics import box_agreement, text_boxes

    page = _page([(2, 2, 8, 20), (20, 5, 26, 30), (35, 35, 37, 37)])  # the 2x2 region is below min_size 3
    assert text_boxes(page[0, :, :, 0]) == [(2, 2, 8, 20), (20, 5, 26, 30)]
    dim = _page([(2, 2, 8, 20)], value=0.5)  # above the pixel threshold, below the box score 0.6: no box
    assert text_boxes(dim[0, :, :, 0]) == []
    # the same page: 1; one box lost: F1 = 2*1 / (2+1); one box shifted past IoU 0.5: F1 = 2*1 / (2+2)
    assert box_agreement(page, page) == 1.0
    assert box_agreement(page, _page([(2, 2, 8, 20)])) == pytest.approx(2 / 3)
    assert box_agreement(page, _page([(2, 2, 8, 20), (20, 18, 26, 43)])) == pytest.approx(0.5)
    assert box_agreement(_page([]), _page([])) == 1.0  # no box on either side: nothing to disagree on
    run = lambda maps: ModelRun(outputs=(maps,), latency_ms=0.0)  # noqa: E731
    assert task_metric("boxes@0.3")(run(page), run(_page([(2, 2, 8, 20)]))) == pytest.approx(2 / 3)


def test_box_agreement_needs_single_channel_maps():
    from edgesep.errors import ConfigError
    from edgesep.quantize.map_metrics import box_agreement

    with pytest.raises(ConfigError, match="single-channel 2-D maps"):
        box_agreement(np.zeros((1, 8, 8, 2)), np.zeros((1, 8, 8, 2)))


def test_greedy_fallback_stops_when_no_layer_gains():
    """``auto_fallback=N`` is a maximum: a layer that does not raise the metric is not kept float (it would only
    cost latency). Doubles: a "model" is the tuple of its float layers, the metric rewards only "a"."""
    from edgesep.quantize.sensitivity import greedy_fallback

    def metric(reference, candidate):
        return 0.5 + 0.25 * ("a" in candidate)

    chosen, ranking = greedy_fallback(lambda names: names, lambda model: model, None, [("b", "MUL"), ("a", "CONV_2D"), ("c", "ADD")],
                                      metric=metric, count=3)  # fmt: skip
    assert chosen == ("a",)
    assert [(s.name, s.gain) for s in ranking][0] == ("a", 0.25) and all(s.gain == 0 for s in ranking[1:])


def test_float_ends_keep_the_last_ops_float_in_the_written_model(broken):
    """``float_ends=(0, 0.5)`` keeps the second half of the ops float: the broken conv and its reader are there, so
    the output is repaired; the names land in the sidecar's keep_float and are float32 in the flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    from edgesep.quantize import quantize
    from edgesep.quantize.recipe import QuantRecipe

    folder, onnx = broken
    plain = quantize(onnx, folder / "plain.tflite", recipe=QuantRecipe(mode="int8", samples=64),
                     calibration=str(folder / "calib.npy"), holdout=16)  # fmt: skip
    result = quantize(onnx, folder / "ends.tflite", recipe=QuantRecipe(mode="int8", samples=64, float_ends=(0.0, 0.5)),
                      calibration=str(folder / "calib.npy"), holdout=16)  # fmt: skip
    assert plain.fidelity.cosine < 0.97 and result.fidelity.cosine > 0.999
    assert result.recipe.float_ends == (0.0, 0.5) and result.recipe.keep_float
    dtypes = {d["name"]: d["dtype"] for d in Interpreter(model_path=str(folder / "ends.tflite")).get_tensor_details()}
    assert all(dtypes[name] == np.float32 for name in result.recipe.keep_float)


@pytest.mark.parametrize("ends", [(0.6, 0.0), (-0.1, 0.0), (0.1,), ("a", 0.0)])
def test_float_ends_must_be_two_fractions(ends):
    from edgesep.errors import ConfigError
    from edgesep.quantize.recipe import QuantRecipe

    with pytest.raises(ConfigError, match="float_ends"):
        QuantRecipe(float_ends=ends)


@pytest.mark.parametrize("text,message", [("0.1", "must be two fractions"), ("a,b", "is not two comma-separated fractions"),
                                          ("0.7,0", "recipe float_ends must be two fractions")])  # fmt: skip
def test_cli_bad_float_ends_exit_2_with_one_line(broken, tmp_path, capsys, text, message):
    from edgesep.cli.main import main

    folder, onnx = broken
    code = main(["quantize", str(onnx), "--calib", str(folder / "calib.npy"), "--float-ends", text, "-o", str(tmp_path / "x.tflite")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("edgesep: error: ") and message in err[0]
    assert not (tmp_path / "x.tflite").exists()
