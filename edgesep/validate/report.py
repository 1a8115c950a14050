"""Every report edgesep writes: Markdown + HTML with a latency histogram and an accuracy-vs-latency plot.

One pair of models (:func:`write_report`), several devices (:func:`write_multi_report`) and
the variants summary of ``edgesep run`` (:func:`write_summary_report`).

matplotlib is imported when a report is written (``Figure`` + the Agg canvas,
no pyplot state); every file goes through ``edgesep.fileio.atomic_path``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesep.fileio import atomic_path, check_output, write_text
from edgesep.results import RESULTS_SUFFIX, RunResults
from edgesep.validate.table import COLUMNS, MULTI_COLUMNS, comparison_rows, device_line, device_slug, ms, multi_device_rows, notes, pct

if TYPE_CHECKING:
    from edgesep.validate.step import ValidationReport

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
LATENCY_PNG = "latency_hist.png"
ACCURACY_PNG = "accuracy_vs_latency.png"
REPORT_FILES = (REPORT_MD, REPORT_HTML, LATENCY_PNG, ACCURACY_PNG)


def _load_latencies(folder: Path) -> dict[str, np.ndarray]:
    runs = (RunResults.load(p) for p in sorted(folder.glob(f"*{RESULTS_SUFFIX}")))
    return {run.tag: np.asarray(run.latencies_ms, dtype=np.float64) for run in runs}


def latency_histogram(latencies: Mapping[str, np.ndarray], output: Path, *, emulated: bool, force: bool) -> Path:
    """Overlaid per-model histograms of the timed runs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    present = {tag: values for tag, values in latencies.items() if np.asarray(values).size}
    if present:
        # Range up to the largest p99: a few scheduler outliers would squash the histogram;
        # they are clipped into the last bin.
        low = min(float(v.min()) for v in present.values())
        high = max(float(np.percentile(v, 99)) for v in present.values()) * 1.1
        bins = np.linspace(low, high if high > low else low + 1e-3, 31)
        for tag, values in present.items():
            axes.hist(
                np.clip(values, low, bins[-1]),
                bins=bins,  # type: ignore[arg-type]  # matplotlib's hint omits arrays, which hist() accepts
                alpha=0.6,
                label=f"{tag} (p50 {ms(np.median(values))} ms)",
            )
        axes.legend()
    axes.set_xlabel("latency per inference (ms)" + (" - EMULATED" if emulated else ""))
    axes.set_ylabel("timed runs")
    axes.set_title("Latency (warm-up excluded)" + (" - EMULATED, not device speed" if emulated else ""))
    return _save(figure, output, force=force)


def _points(report: ValidationReport, *, prefix: str = "") -> list[tuple[str, float, float]]:
    """``(label, median ms, score %)`` per model: top-1 accuracy, or agreement with float when unlabelled."""
    comparison = report.comparison
    labelled = comparison.baseline.top1 is not None
    agreement = comparison.agreement.top1_agreement if comparison.agreement is not None else None
    candidates = [
        ("float", comparison.baseline, comparison.baseline.top1 if labelled else 1.0),
        ("quant", comparison.candidate, comparison.candidate.top1 if labelled else agreement),
    ]
    return [
        (f"{prefix}{tag}", summary.latency.typical, 100 * score)
        for tag, summary, score in candidates
        if summary.latency is not None and score is not None
    ]


def _scatter(points: list[tuple[str, float, float]], output: Path, *, labelled: bool, emulated: bool, force: bool) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, latency, score in points:
        axes.scatter([latency], [score], s=60, label=f"{label}: {score:.2f}%, {ms(latency)} ms")
    latencies = [latency for _, latency, _ in points if latency > 0]
    if latencies and max(latencies) / min(latencies) > 20:  # e.g. emulated next to native: log scale
        axes.set_xscale("log")
    else:
        axes.set_xlim(0, max(latencies, default=1.0) * 1.3)
    axes.margins(y=0.2)
    low, high = axes.get_ylim()
    axes.set_ylim(low, min(high, 101.0))  # accuracy cannot exceed 100%
    if points:
        axes.legend(loc="lower right", fontsize="small")
    axes.set_xlabel("median latency (ms)" + (" - EMULATED where marked" if emulated else ""))
    axes.set_ylabel("top-1 accuracy (%)" if labelled else "top-1 agreement with float (%)")
    axes.set_title("Accuracy vs latency")
    axes.grid(True, alpha=0.3)
    return _save(figure, output, force=force)


def accuracy_vs_latency(report: ValidationReport, output: Path, *, force: bool) -> Path:
    """One point per model: median latency vs top-1 accuracy (agreement with float when unlabelled)."""
    comparison = report.comparison
    return _scatter(_points(report), output, labelled=comparison.baseline.top1 is not None,
                    emulated=comparison.emulated, force=force)  # fmt: skip


def _save(figure, output: Path, *, force: bool) -> Path:
    with atomic_path(output, force=force) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")
    return output


def _summary_lines(report: ValidationReport) -> list[str]:
    comparison = report.comparison
    lines = [
        f"float model: {report.float_model}",
        f"quantized model: {report.quant_model}",
        f"data: {report.data} ({report.samples} samples)",
        f"device: {report.device} ({device_line(comparison.device, threads=report.threads)})",
        f"timed runs per model: {comparison.baseline.latency.runs if comparison.baseline.latency else 0}, "
        f"warm-up runs: {report.warmup} (excluded)",
    ]
    if comparison.accuracy_drop_pp is not None:
        lines.append(
            f"top-1 accuracy: {pct(comparison.baseline.top1)} -> {pct(comparison.candidate.top1)} "
            f"(drop {comparison.accuracy_drop_pp:.2f} pp)"
        )
    if comparison.size_ratio is not None:
        lines.append(f"size: {comparison.size_ratio:.2f}x smaller")
    return lines + notes(comparison)


def render_markdown(report: ValidationReport) -> str:
    rows = comparison_rows(report.comparison)
    out = ["# edgesep validation report", ""]
    out += [f"- {line}" for line in _summary_lines(report)]
    out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    out += ["", f"![latency histogram]({LATENCY_PNG})", "", f"![accuracy vs latency]({ACCURACY_PNG})", ""]
    return "\n".join(out)


def _img(name: str, alt: str, images: Mapping[str, bytes] | None) -> str:
    """An <img>: inline (base64) when the PNG bytes are given, so the HTML file is self-contained."""
    if images and name in images:
        import base64

        source = "data:image/png;base64," + base64.b64encode(images[name]).decode("ascii")
    else:
        source = name
    return f'<p><img src="{source}" alt="{alt}"></p>'


def _html_page(
    title: str, heading: str, lines: Sequence[str], columns: Sequence[str], rows: Sequence[Sequence[str]], figures: Sequence[str]
) -> str:
    """The HTML of a validation report: summary lines, the table, then the figures (``<p><img ...></p>``)."""
    esc = html.escape
    header = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return (
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:right}</style></head><body>\n"
        f"<h1>{heading}</h1>\n<ul>{items}</ul>\n"
        f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>\n"
        + "".join(f"{figure}\n" for figure in figures)
        + "</body></html>\n"
    )  # fmt: skip


def render_html(report: ValidationReport, *, images: Mapping[str, bytes] | None = None) -> str:
    figures = [_img(LATENCY_PNG, "latency histogram", images), _img(ACCURACY_PNG, "accuracy vs latency", images)]
    return _html_page("edgesep validation report", "edgesep validation report", _summary_lines(report), COLUMNS,
                      comparison_rows(report.comparison), figures)  # fmt: skip


def write_report(
    report: ValidationReport,
    folder: Path,
    *,
    latencies: Mapping[str, np.ndarray] | None = None,
    force: bool = False,
) -> tuple[Path, ...]:
    """Write report.md, report.html and the two PNGs into ``folder``; returns their paths.

    ``latencies`` (per tag) default to the results files in ``folder``.
    """
    folder = Path(folder)
    targets = [check_output(folder / name, force=force) for name in REPORT_FILES]
    latencies = dict(latencies) if latencies is not None else _load_latencies(folder)
    latency_histogram(latencies, targets[2], emulated=report.comparison.emulated, force=force)
    accuracy_vs_latency(report, targets[3], force=force)
    write_text(targets[0], render_markdown(report), force=force)
    images = {LATENCY_PNG: targets[2].read_bytes(), ACCURACY_PNG: targets[3].read_bytes()}
    write_text(targets[1], render_html(report, images=images), force=force)
    return tuple(targets)


def render_multi_markdown(result) -> str:
    """The several-devices summary (a :class:`~edgesep.validate.multi.MultiDeviceReport`)."""

    first = result.reports[0]
    out = ["# edgesep validation report: several devices", ""]
    out += [f"- float model: {first.float_model}", f"- quantized model: {first.quant_model}",
            f"- data: {first.data} ({first.samples} samples, the same on every device)",
            f"- reference device for the `vs ref` columns: {first.device}"]  # fmt: skip
    for single in result.reports:
        out.append(f"- {single.device}: {device_line(single.comparison.device, threads=single.threads)}")
        out += [f"- {single.device}: {line}" for line in notes(single.comparison)]
    out += ["", "| " + " | ".join(MULTI_COLUMNS) + " |", "|" + "|".join("---" for _ in MULTI_COLUMNS) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in multi_device_rows(result)]
    out += ["", f"![accuracy vs latency]({ACCURACY_PNG})", ""]
    out += [f"Per-device report: [{single.device}]({_device_folder(single)}/{REPORT_MD})" for single in result.reports]
    return "\n".join(out) + "\n"


def _device_folder(single) -> str:
    return device_slug(single.device)


def write_multi_report(result, folder: Path, *, force: bool = False) -> tuple[Path, ...]:
    """``folder/report.md`` + ``report.html`` + ``accuracy_vs_latency.png`` for several devices side by side."""

    folder = Path(folder)
    md, page, png = (check_output(folder / name, force=force) for name in (REPORT_MD, REPORT_HTML, ACCURACY_PNG))
    points = [
        point
        for single in result.reports
        for point in _points(single, prefix=f"{single.device}{' (emulated)' if single.comparison.emulated else ''} ")
    ]
    labelled = result.reports[0].comparison.baseline.top1 is not None
    emulated = any(single.comparison.emulated for single in result.reports)
    _scatter(points, png, labelled=labelled, emulated=emulated, force=force)
    markdown = render_multi_markdown(result)
    write_text(md, markdown, force=force)
    lines = [line[2:] for line in markdown.splitlines() if line.startswith("- ")]
    figure = _img(ACCURACY_PNG, "accuracy vs latency", {ACCURACY_PNG: png.read_bytes()})
    write_text(page, _html_page("edgesep validation: several devices", "edgesep validation report: several devices",
                                lines, MULTI_COLUMNS, multi_device_rows(result), [figure]), force=force)  # fmt: skip
    return md, page, png


SUMMARY_HEADERS = ("device", "model", "size KB", "accuracy %", "top-1 agreement %", "cosine", "p50 ms", "speed-up")
_SUMMARY_CELLS = (("device", "{}"), ("variant", "{}"), ("size_kb", "{:.1f}"), ("accuracy", "{:.2f}"),
                  ("agreement", "{:.2f}"), ("cosine", "{:.5f}"), ("p50_ms", "{:.3f}"), ("speedup", "{:.2f}x"))  # fmt: skip


def write_summary_report(rows: Sequence[Mapping[str, Any]], folder: Path, *, force: bool = False) -> Path:
    """``edgesep run``'s report.md + report.html: the summary table of every (device, variant) row
    (:func:`~edgesep.validate.table.variant_rows`) and an accuracy-vs-latency plot; returns report.md."""
    folder = Path(folder)
    md, page = check_output(folder / REPORT_MD, force=force), check_output(folder / REPORT_HTML, force=force)
    plotted = [r for r in rows if r.get("p50_ms") is not None and r.get("accuracy") is not None]
    points = [(f"{r['variant']} ({r['device']})", r["p50_ms"], r["accuracy"]) for r in plotted]
    plot = None
    if points:
        emulated_points = any(r.get("emulated") for r in plotted)
        plot = _scatter(points, folder / ACCURACY_PNG, labelled=True, emulated=emulated_points, force=force)
    body = [[("-" if r.get(key) is None else fmt.format(r[key])) for key, fmt in _SUMMARY_CELLS] for r in rows]
    emulated = sorted({r["device"] for r in rows if r.get("emulated")})
    lines = ["# edgesep run", "", "| " + " | ".join(SUMMARY_HEADERS) + " |", "|" + "---|" * len(SUMMARY_HEADERS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    if emulated:
        lines += ["", f"Latency on {', '.join(emulated)} is **EMULATED** (qemu): not the speed of the real board."]
    lines += ["", "Per-variant reports (latency histograms, device facts): `validate/<device>/<mode>/report.md`."]
    if plot is not None:
        lines += ["", f"![accuracy vs latency]({plot.name})"]
    write_text(md, "\n".join(lines) + "\n", force=force)
    html_rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in body)
    write_text(page, (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgesep run</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 10px;border-bottom:1px solid #ddd}</style></head>"
        "<body><h1>edgesep run</h1><table><tr>" + "".join(f"<th>{h}</th>" for h in SUMMARY_HEADERS) + "</tr>"
        + html_rows + "</table>"
        + (f"<p><b>EMULATED</b> latency on {', '.join(emulated)}: not the speed of the real board.</p>" if emulated else "")
        + (f"<img src='{plot.name}' alt='accuracy vs latency'>" if plot is not None else "")
        + "</body></html>\n"
    ), force=force)  # fmt: skip
    return md
