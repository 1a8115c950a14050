"""`edgesep validate` and `edgesep bench` through edgesep.cli.main.main (exit codes, table, JSON, report)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgesep.cli.main import main


def _validate_args(digits_models, *extra):
    float_path, quant_path, _ = digits_models
    return ["-q", "validate", "--float", str(float_path), "--quant", str(quant_path), "--data", "digits",
            "--runs", "5", "--warmup", "1", "--threads", "1", *extra]  # fmt: skip


def test_validate_json_and_report(digits_models, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(_validate_args(digits_models, "--samples", "60", "--output-dir", str(out), "--json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    assert payload["samples"] == 60 and payload["device"] == "local"
    assert payload["device_facts"]["runtime"]["name"] == "ai_edge_litert"
    assert payload["baseline"]["top1"] > 0.85
    assert payload["agreement"]["top1_agreement"] > 0.9
    assert payload["baseline"]["latency_ms"]["runs"] == 60
    assert (out / "report.html").is_file() and (out / "latency_hist.png").is_file()
    assert f"{100 * payload['candidate']['top1']:.2f}%" in (out / "report.md").read_text()
    # same output dir again without --force: refused, exit 2
    assert main(_validate_args(digits_models, "--samples", "60", "--output-dir", str(out))) == 2
    assert "--force" in capsys.readouterr().err
    assert main(_validate_args(digits_models, "--samples", "60", "--output-dir", str(out), "--force", "--json")) == 0


def test_validate_table(digits_models, capsys):
    assert main(_validate_args(digits_models, "--samples", "30", "--no-report")) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "speed-up" in out and "float" in out and "quant" in out
    assert "ai_edge_litert" in out and "EMULATED" not in out


def test_fail_if_drop_exit_codes(digits_models, tmp_path, capsys):
    float_path, _, _ = digits_models
    from edgesep.data.digits import load_digits_split

    split = load_digits_split()
    np.savez(tmp_path / "d.npz", x=split.x_test[:40], y=split.y_test[:40])
    args = ["-q", "validate", "--float", str(float_path), "--quant", str(digits_models[1]),
            "--data", str(tmp_path / "d.npz"), "--runs", "1", "--warmup", "0"]  # fmt: skip
    assert main([*args, "--fail-if-drop", "50", "--json"]) == 0
    drop = json.loads(capsys.readouterr().out)["accuracy_drop_pp"]
    assert drop is not None
    # an allowance below the measured drop (and below 0 if no drop) fails with exit 1
    assert main([*args, "--fail-if-drop", str(min(drop, 0.0) - 1.0)]) == 1
    assert "dropped" in capsys.readouterr().err


def test_bad_inputs_exit_2(digits_models, tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 3, 8, 8), np.float32))
    float_path, quant_path, _ = digits_models
    base = ["validate", "--float", str(float_path), "--quant", str(quant_path), "--runs", "1"]
    assert main([*base, "--data", str(tmp_path / "bad.npz")]) == 2
    assert "data samples have shape (3, 8, 8)" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "missing.npz")]) == 2
    assert main([*base, "--data", "digits", "--report"]) == 2
    assert "--report needs --output-dir" in capsys.readouterr().err
    # --fail-if-drop without labels is a usage error, not a threshold miss
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 16, 16), np.float32))
    assert main([*base, "--data", str(tmp_path / "x.npy"), "--fail-if-drop", "1"]) == 2
    assert "--fail-if-drop needs labels" in capsys.readouterr().err


def test_bench_json_and_table(digits_models, capsys):
    float_path, quant_path, _ = digits_models
    code = main(["-q", "bench", str(float_path), str(quant_path), str(quant_path), "--runs", "7", "--warmup", "1",
                 "--threads", "1", "--json"])  # fmt: skip
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert [m["tag"] for m in payload["models"]] == ["linear", "linear_int8", "linear_int8-2"]
    assert all(m["latency_ms"]["runs"] == 7 and m["latency_ms"]["p50"] > 0 for m in payload["models"])
    assert payload["models"][0]["size_bytes"] == float_path.stat().st_size
    assert payload["models"][1]["threads"] == 1
    assert payload["models"][0]["speedup_vs_first"] == pytest.approx(1.0)
    assert main(["-q", "bench", str(float_path), "--runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "linear.tflite" in out and "p99 ms" in out


def test_bench_missing_model_exit_2(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "nope.tflite")]) == 2
    assert "model not found" in capsys.readouterr().err


def test_compare_existing_results_files(digits_models, tmp_path, capsys):
    """Run once, then compare the results files on the host without running anything."""
    measured = tmp_path / "measured"
    assert main(_validate_args(digits_models, "--samples", "30", "--output-dir", str(measured), "--no-report", "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    report_dir = tmp_path / "report"
    assert main(["-q", "validate", "--results", str(measured), "--data", "digits", "--output-dir", str(report_dir),
                 "--json"]) == 0  # fmt: skip
    again = json.loads(capsys.readouterr().out)
    for key in ("top1", "top5", "size_bytes"):
        assert again["candidate"][key] == first["candidate"][key]
    assert again["agreement"] == first["agreement"]
    assert again["candidate"]["latency_ms"] == first["candidate"]["latency_ms"]
    assert (report_dir / "report.md").is_file()
    # labels from a file; too few labels is a usage error
    from edgesep.data.digits import load_digits_split

    np.save(tmp_path / "y.npy", load_digits_split().y_test[:30])
    assert main(["-q", "validate", "--results", str(measured), "--labels", str(tmp_path / "y.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["candidate"]["top1"] == first["candidate"]["top1"]
    np.save(tmp_path / "short.npy", np.zeros(5, np.int64))
    assert main(["validate", "--results", str(measured), "--labels", str(tmp_path / "short.npy")]) == 2
    assert "30 samples were run but only 5 labels" in capsys.readouterr().err
    # no labels at all: agreement only
    assert main(["-q", "validate", "--results", str(measured), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["candidate"]["top1"] is None and payload["agreement"]["top1_agreement"] is not None
