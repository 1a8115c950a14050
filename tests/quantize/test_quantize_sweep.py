"""`edgesep quantize --sweep` and edgesep.quantize.sweep on the digits SepCNN: rows, real numbers, choice, budget, skips."""

from __future__ import annotations

import json

import pytest

from edgesep.cli.main import main
from edgesep.errors import ThresholdError
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.sweep import SweepRow, choose, default_candidates, sweep

NAMES = [
    "per-channel minmax",
    "per-tensor naive",
    "per-tensor + equalize + bias",
    "per-channel percentile",
    "per-channel mse",
    "per-channel entropy",
    "per-channel percentile + bias",
    "per-channel mse + equalized activations",
    "per-channel percentile + equalized activations",
    "per-channel mse + equalized activations + float stem",
    "per-channel percentile + adaround",
]
QAT_NAMES = ["per-channel minmax + QAT", "per-tensor + QAT"]  # only with the PyTorch model
SMALL = ["--samples", "40", "--holdout", "40"]


@pytest.fixture(scope="module")
def swept(digits_onnx):
    """The full sweep with the PyTorch model (every candidate measured)."""
    return sweep(digits_onnx, calibration="digits", model="default", base=QuantRecipe(samples=40), holdout=40, latency_runs=12)


def test_default_candidates_cover_the_remedies():
    candidates = default_candidates(QuantRecipe(samples=40))
    assert [c.name for c in candidates] == NAMES
    assert [c.recipe.needs_torch_model for c in candidates] == [False, False, True] + [False] * 8
    assert all(c.recipe.samples == 40 for c in candidates)
    assert candidates[5].recipe.activation_range == "entropy"
    assert candidates[6].recipe.bias_correction == "empirical" and candidates[6].recipe.per_channel  # on the int8 model
    assert [(c.recipe.activation_range, c.recipe.equalize_activations) for c in candidates[7:9]] == [("mse", True), ("percentile", True)]
    assert [c.recipe.weight_rounding for c in candidates] == ["nearest"] * 10 + ["adaround"]  # on the int8 model too
    assert candidates[9].recipe.float_ends == (0.02, 0.0) and candidates[9].recipe.equalize_activations
    with_qat = default_candidates(QuantRecipe(samples=40), qat=True)
    assert [c.name for c in with_qat] == NAMES + QAT_NAMES and with_qat[: len(NAMES)] == candidates
    assert [(c.recipe.qat_epochs, c.recipe.per_channel, c.recipe.needs_torch_model) for c in with_qat[len(NAMES) :]] == [
        (3, True, True),
        (3, False, True),
    ]
    assert default_candidates(QuantRecipe(qat_epochs=5), qat=True)[-1].recipe.qat_epochs == 5


def test_sweep_measures_every_candidate(swept):
    assert [row.name for row in swept.rows] == NAMES + QAT_NAMES and swept.eval_samples == 40
    for row in swept.rows:
        assert row.skipped is None
        assert 0.0 <= row.top1_agreement <= 1.0 and -1.0 <= row.cosine <= 1.0 + 1e-9  # entropy ranges hurt here (docs)
        assert 0.0 <= row.accuracy <= 1.0 and row.p50_ms > 0 and row.size_bytes > 1000
    baseline = swept.rows[0]
    assert baseline.top1_agreement >= 0.98 and baseline.cosine > 0.999 and baseline.accuracy >= 0.9  # labels line up with the held-out draw
    assert swept.rows[1].size_bytes < baseline.size_bytes  # per-tensor: one scale per tensor
    rows = {row.name: row for row in swept.rows}  # QAT: same size, closer to float
    for plain, tuned in (("per-channel minmax", "per-channel minmax + QAT"), ("per-tensor naive", "per-tensor + QAT")):
        assert rows[tuned].size_bytes == rows[plain].size_bytes and rows[tuned].top1_agreement == 1.0
        assert rows[tuned].cosine > rows[plain].cosine
    best = max(swept.rows, key=lambda row: (row.top1_agreement, row.cosine))
    assert swept.chosen == best.name and swept.best is best


def test_choose_respects_the_budget():
    recipe = QuantRecipe()
    rows = [
        SweepRow("fast", recipe, 0.95, 0.99, None, 1.0, 10),
        SweepRow("slow", recipe, 1.0, 0.999, None, 5.0, 10),
        SweepRow("skip", recipe, skipped="why"),
    ]
    assert choose(rows, latency_budget_ms=None) == "slow"
    assert choose(rows, latency_budget_ms=2.0) == "fast"
    with pytest.raises(ThresholdError, match="latency budget"):
        choose(rows, latency_budget_ms=0.5)


@pytest.mark.slow  # three full CLI sweeps (AdaRound candidate included): > 20 s
def test_cli_sweep_table_skips_without_torch_model_and_writes_best(digits_onnx, tmp_path, capsys):
    out = tmp_path / "best.tflite"
    code = main(["-q", "quantize", str(digits_onnx), "--calib", "digits", "--sweep", *SMALL, "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and out.is_file() and (tmp_path / "best.tflite.json").is_file()
    for column in ("agreement", "cosine", "accuracy", "p50 ms", "size kB", "chosen"):
        assert column in text
    assert "skipped per-tensor + equalize + bias: needs the PyTorch model" in text and "chosen: " in text

    code = main(["-q", "quantize", str(digits_onnx), "--calib", "digits", "--sweep", *SMALL, "-o", str(out)])
    assert code == 2  # exists, no --force

    code = main(["-q", "quantize", str(digits_onnx), "--calib", "digits", "--sweep", *SMALL, "--json", "--latency-budget-ms", "1000"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["latency_budget_ms"] == 1000.0 and payload["path"] is None
    rows = {row["name"]: row for row in payload["rows"]}
    assert list(rows) == NAMES and rows["per-tensor + equalize + bias"]["skipped"]
    measured = [row for row in payload["rows"] if not row["skipped"]]
    assert all(0.0 <= row["top1_agreement"] <= 1.0 for row in measured)
    assert rows["per-channel minmax"]["top1_agreement"] >= 0.98
    best = max(measured, key=lambda row: (row["top1_agreement"], row["cosine"]))
    assert payload["chosen"] == best["name"]


@pytest.mark.slow  # a full CLI sweep (AdaRound candidate included): > 20 s
def test_cli_impossible_budget_exits_1(digits_onnx, tmp_path, capsys):
    out = tmp_path / "none.tflite"
    code = main(["-q", "quantize", str(digits_onnx), "--calib", "digits", "--sweep", *SMALL, "--latency-budget-ms", "1e-9", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "no recipe runs within the latency budget" in err


def test_cli_output_required_without_sweep(digits_onnx, capsys):
    assert main(["-q", "quantize", str(digits_onnx), "--calib", "digits"]) == 2
    assert "-o/--output" in capsys.readouterr().err
    assert main(["-q", "quantize", str(digits_onnx), "--calib", "digits", "--latency-budget-ms", "1", "-o", "x.tflite"]) == 2


def test_search_stops_at_the_first_recipe_that_meets_the_target(digits_onnx, tmp_path, capsys):
    out = tmp_path / "searched.tflite"
    code = main(["-q", "quantize", str(digits_onnx), "--calib", "digits", *SMALL, "--metric", "top1", "--target", "0.9",
                 "-o", str(out), "--json"])  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["met"] is True
    # per-channel min/max already agrees on >= 90 % of the held-out digits: nothing else was tried
    assert [step["name"] for step in payload["steps"]] == ["per-channel minmax"] and payload["chosen"] == "per-channel minmax"
    assert payload["steps"][0]["metric_value"] >= 0.9 and payload["steps"][0]["partitions"] == 1
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["search"] == payload and sidecar["recipe"]["activation_range"] == "minmax"


def test_search_that_misses_writes_the_best_and_raises(digits_onnx, tmp_path):
    from edgesep.quantize.sweep import Candidate, search
    from edgesep.sidecar import read_sidecar

    base = QuantRecipe(samples=40)
    candidates = [(Candidate("per-tensor", QuantRecipe(samples=40, per_channel=False)), 0),
                  (Candidate("per-channel", base), 0)]  # fmt: skip
    out = tmp_path / "best.tflite"
    with pytest.raises(ThresholdError, match=r"no recipe reached cosine >= 1.01 on 40 held-out samples; wrote the best one"):
        search(digits_onnx, out, calibration="digits", metric="cosine", target=1.01, candidates=candidates, holdout=40)
    report = read_sidecar(out).extra["search"]
    values = {step["name"]: step["metric_value"] for step in report["steps"]}
    assert list(values) == ["per-tensor", "per-channel"] and report["met"] is False  # both tried: neither met 1.01
    assert report["chosen"] == max(values, key=values.get) and all(0.9 < v < 1.01 for v in values.values())


def test_search_tries_bias_correction_last_and_records_it(digits_onnx, tmp_path):
    """Bias correction and then AdaRound are the last (costliest) candidates; tried when the cheaper ones miss.
    Per-tensor here so that it matters: measured cosine 0.99968 (minmax) / 0.99955 / 0.99959 / 0.99858 (entropy),
    corrected 0.99985 (the search stops there: AdaRound is not tried)."""
    from dataclasses import replace

    from edgesep.quantize.sweep import ADAROUND_CANDIDATE, BIAS_CANDIDATE, Candidate, search, search_candidates

    default = search_candidates(QuantRecipe(samples=40))
    assert [c.name for c, _ in default][-2:] == [BIAS_CANDIDATE, ADAROUND_CANDIDATE]
    assert default[-1][1] == default[-2][1] == 0  # no float layers: same speed
    assert [c.recipe.bias_correction for c, _ in default] == ["none"] * 9 + ["empirical", "none"]
    assert [c.recipe.weight_rounding for c, _ in default] == ["nearest"] * 10 + ["adaround"]
    assert [c.recipe.equalize_activations for c, _ in default] == [False] * 4 + [True] * 3 + [False] * 4  # after the ranges
    assert [c.recipe.float_ends for c, _ in default][6] == (0.02, 0.0)  # then the stem kept float
    same_graph = [(Candidate(c.name, replace(c.recipe, per_channel=False)), 0) for c, fallback in default
                  if fallback == 0 and c.name != ADAROUND_CANDIDATE and not c.recipe.equalize_activations]  # fmt: skip
    out = tmp_path / "corrected.tflite"
    outcome = search(digits_onnx, out, calibration="digits", metric="cosine", target=0.99975, candidates=same_graph, holdout=40)
    values = {step.name: step.metric_value for step in outcome.steps}
    assert list(values) == [c.name for c, _ in same_graph] and outcome.met and outcome.chosen.name == BIAS_CANDIDATE
    assert max(v for name, v in values.items() if name != BIAS_CANDIDATE) < 0.99975 <= values[BIAS_CANDIDATE]
    assert outcome.chosen.partitions == outcome.steps[0].partitions  # same graph as the uncorrected int8 model
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["search"]["chosen"] == BIAS_CANDIDATE and sidecar["recipe"]["bias_correction"] == "empirical"
    assert sidecar["search"]["steps"][-1]["recipe"]["bias_correction"] == "empirical"
    report = sidecar["quantization"]["prepared"]["bias_correction"]
    assert report["on"] == "int8 tflite" and len(report["layers"]) == 8
