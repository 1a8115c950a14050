"""validate() on the real local device with two small real .tflite models (float32 and full int8)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.devices.base import RunSpec
from edgesep.errors import OutputExistsError, ShapeError, ThresholdError
from edgesep.results import RunResults
from edgesep.validate import validate
from edgesep.validate.table import ms

SPEC = RunSpec(runs=20, warmup=2, threads=1)


@pytest.fixture(scope="module")
def local_report(digits_models, tmp_path_factory):
    float_path, quant_path, _ = digits_models
    out = tmp_path_factory.mktemp("validate-out")
    return validate(float_path, quant_path, data="digits", device="local", spec=SPEC, output_dir=out), out


def test_accuracy_and_agreement_on_digits(local_report, digits_models):
    report, _ = local_report
    _, _, reference_accuracy = digits_models
    comparison = report.comparison
    assert report.samples == 360
    # the float .tflite reproduces the float64 numpy classifier on all 360 test images
    assert comparison.baseline.top1 == pytest.approx(reference_accuracy, abs=1 / 360)
    assert comparison.baseline.top1 > 0.9
    assert comparison.accuracy_drop_pp < 3.0  # int8 of a linear model loses little
    assert comparison.agreement.top1_agreement > 0.95
    assert comparison.agreement.cosine > 0.99
    assert 0 < comparison.agreement.max_abs < 1.0
    assert comparison.size_ratio > 2.0  # int8 weights vs float32 weights
    assert comparison.baseline.latency.runs == 360  # every sample is timed once (>= runs)
    assert comparison.emulated is False
    assert comparison.device["runtime"]["name"]


def test_results_files_round_trip(local_report):
    report, out = local_report
    names = sorted(p.name for p in report.results_files)
    assert names == ["float.outputs.npz", "float.results.json", "quant.outputs.npz", "quant.results.json"]
    quant = RunResults.load(out / "quant.results.json")
    assert quant.outputs.shape == (360, 10) and quant.complete
    from edgesep.validate.comparison import compare_runs

    again = compare_runs(out / "float.results.json", out / "quant.results.json", labels=None)
    assert again.agreement.top1_agreement == pytest.approx(report.comparison.agreement.top1_agreement)


def test_report_files_contain_the_numbers(local_report):
    report, out = local_report
    assert sorted(p.name for p in report.report_files) == [
        "accuracy_vs_latency.png", "latency_hist.png", "report.html", "report.md",
    ]  # fmt: skip
    for png in ("latency_hist.png", "accuracy_vs_latency.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / png).stat().st_size > 5000
    top1 = f"{100 * report.comparison.candidate.top1:.2f}%"
    p50 = ms(report.comparison.candidate.latency.p50)
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for text in (markdown, html):
        assert top1 in text and p50 in text
    assert "latency_hist.png" in markdown and "accuracy_vs_latency.png" in markdown
    assert html.count("data:image/png;base64,") == 2
    for text in (markdown, html):
        assert "EMULATED" not in text
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["candidate"]["top1"] == pytest.approx(report.comparison.candidate.top1)
    assert payload["samples"] == 360


def test_existing_outputs_need_force(local_report, digits_models):
    _, out = local_report
    float_path, quant_path, _ = digits_models
    with pytest.raises(OutputExistsError, match="report exists"):
        validate(float_path, quant_path, data="digits", spec=SPEC, samples=5, output_dir=out)


def test_fail_if_drop_and_no_output_dir(digits_models):
    float_path, quant_path, _ = digits_models
    spec = RunSpec(runs=5, warmup=1, threads=1)
    report = validate(float_path, quant_path, data="digits", spec=spec, samples=40)
    assert report.results_files == () and report.report_files == ()
    assert report.samples == 40 and report.comparison.baseline.latency.runs == 40
    # same model twice: nothing is lost
    same = validate(float_path, float_path, data="digits", spec=spec, samples=40, fail_if_drop=0.0)
    assert same.accuracy_drop_pp == 0.0 and same.comparison.agreement.max_abs == 0.0
    # a negative allowance makes any non-gain fail
    with pytest.raises(ThresholdError, match="dropped 0.00 pp"):
        validate(float_path, float_path, data="digits", spec=spec, samples=40, fail_if_drop=-0.5)


def test_bad_data_shape(digits_models, tmp_path):
    float_path, quant_path, _ = digits_models
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 3, 16, 16), np.float32), y=np.zeros(4, np.int64))
    with pytest.raises(ShapeError):
        validate(float_path, quant_path, data=tmp_path / "bad.npz", spec=SPEC)
