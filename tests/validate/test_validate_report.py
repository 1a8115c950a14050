"""Table and report rendering from hand-built results (incl. the EMULATED label)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

from edgesep.validate.comparison import compare_runs
from edgesep.validate.report import render_html, render_markdown, write_report
from edgesep.validate.step import ValidationReport
from edgesep.validate.table import EMULATED_LABEL, comparison_rows, comparison_table, ms


def _report(fake_run, *, emulated=False):
    labels = np.array([0, 1, 2, 3])
    logits = np.eye(10, dtype=np.float32)[labels] * 5
    quant = logits.copy()
    quant[3] = np.eye(10, dtype=np.float32)[4] * 5  # one miss -> 75%
    device = {"cpu": "Cortex-A72", "cores": 4, "machine": "aarch64", "python": "3.11.2", "numpy": "2.2.6",
              "runtime": {"name": "ai_edge_litert", "version": "1.4.0"}}  # fmt: skip
    base = fake_run("float", "m.tflite", 2 * 1024 * 1024, np.array([4.0, 4.0, 5.0, 4.0]), logits, device=device)
    cand = fake_run("quant", "m_int8.tflite", 512 * 1024, np.array([1.0, 1.0, 2.0, 1.0]), quant,
                    device=device, emulated=emulated)  # fmt: skip
    comparison = compare_runs(base, cand, labels=labels)
    return ValidationReport(
        float_model=Path("m.tflite"), quant_model=Path("m_int8.tflite"), data="test.npz", samples=4,
        device="pi-emulated" if emulated else "rpi4", runs=4, warmup=1, threads=4, comparison=comparison,
    ), {"float": base.latencies_ms, "quant": cand.latencies_ms}  # fmt: skip


def test_rows_hold_the_hand_computed_figures(fake_run):
    report, _ = _report(fake_run)
    float_row, quant_row = comparison_rows(report.comparison)
    assert float_row[1:4] == ["100.00%", "100.00%", "ref"]
    assert quant_row[1] == "75.00%" and quant_row[3] == "75.00%"
    assert quant_row[5] == "5"  # max-abs: 5 - 0
    assert quant_row[6] == "1.000" and float_row[6] == "4.000"  # p50
    assert quant_row[11] == "4.00x"  # 4 ms / 1 ms
    assert float_row[12] == "2.000" and quant_row[12] == "0.500"  # MB
    assert ms(0.00123) == "0.00123" and ms(12.3456) == "12.346"


def test_terminal_table_shows_device_and_emulation(fake_run):
    report, _ = _report(fake_run, emulated=True)
    console = Console(width=220, record=True)
    console.print(comparison_table(report.comparison))
    text = console.export_text()
    assert "EMULATED latency" in text
    assert "Cortex-A72" in text and "ai_edge_litert 1.4.0" in text and "aarch64" in text
    assert "75.00%" in text and "4.00x" in text


def test_markdown_and_html(fake_run, tmp_path):
    report, latencies = _report(fake_run, emulated=True)
    markdown, html = render_markdown(report), render_html(report)
    for text in (markdown, html):
        assert EMULATED_LABEL in text
        assert "drop 25.00 pp" in text and "4.00x" in text and "4.00x smaller" in text
        assert "quant lost 1 and gained 0 of 4 samples (McNemar p = 1)" in text
    assert markdown.count("\n| ") == 3  # header + 2 rows
    files = write_report(report, tmp_path, latencies=latencies)
    assert [p.name for p in files] == ["report.md", "report.html", "latency_hist.png", "accuracy_vs_latency.png"]
    assert all(p.stat().st_size > 0 for p in files)
    assert (tmp_path / "report.md").read_text() == markdown
    written_html = (tmp_path / "report.html").read_text()
    assert written_html.count('src="data:image/png;base64,iVBORw0KGgo') == 2  # both PNGs inline: self-contained
    assert 'src="latency_hist.png"' in html  # without image bytes: linked files


def test_incomplete_run_is_flagged(fake_run):
    report, _ = _report(fake_run)
    cand = report.comparison.candidate
    import dataclasses

    broken = dataclasses.replace(cand, complete=False, error="timeout after 1 s")
    comparison = dataclasses.replace(report.comparison, candidate=broken)
    text = render_markdown(dataclasses.replace(report, comparison=comparison))
    assert "INCOMPLETE run for quant: timeout after 1 s" in text
