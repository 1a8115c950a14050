"""Terminal tables (rich) for a validation report and for a latency benchmark.

The rows are built as plain strings first (:func:`comparison_rows`) so that the
Markdown/HTML report shows exactly the same figures as the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgesep.validate.metrics import mcnemar_p, size_mb, speedup

if TYPE_CHECKING:
    from rich.table import Table

    from edgesep.validate.comparison import Comparison, ModelSummary

DASH = "-"
COLUMNS = (
    "model", "top-1", "top-5", "agreement", "cosine", "max-abs",
    "p50 ms", "p90 ms", "p99 ms", "mean ms", "std ms", "speed-up", "size MB",
)  # fmt: skip
BASELINE_VARIANT = "float32"  # the float model's tag in validate_variants and its rows
EMULATED_LABEL = "EMULATED latency (qemu): not the speed of the real device"


def make_console():
    """A rich console; when piped (not a terminal) it is wide so no figure is cut."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=220)


def pct(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.2f}%"


def num(value: float | None, fmt: str = ".3f") -> str:
    return DASH if value is None else format(value, fmt)


def ms(value: float | None) -> str:
    """Milliseconds: 3 decimals, or 3 significant digits below 0.1 ms."""
    if value is None or value != value:  # None or NaN
        return DASH
    return f"{value:.3f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"


def _latency_cells(summary: ModelSummary) -> list[str]:
    lat = summary.latency
    if lat is None:
        return [DASH] * 5
    return [ms(lat.p50), ms(lat.p90), ms(lat.p99), ms(lat.mean), ms(lat.std)]


def comparison_rows(comparison: Comparison) -> list[list[str]]:
    """Two rows (float, quantized) of strings, in :data:`COLUMNS` order."""
    base, cand = comparison.baseline, comparison.candidate
    agreement = comparison.agreement
    rows = [
        ["float", pct(base.top1), pct(base.top5), "ref", "ref", "ref",
         *_latency_cells(base), "1.00x", num(size_mb(base.size_bytes), ".3f")],
        ["quant", pct(cand.top1), pct(cand.top5),
         pct(None if agreement is None else agreement.top1_agreement),
         num(None if agreement is None else agreement.cosine, ".6f"),
         num(None if agreement is None else agreement.max_abs, ".4g"),
         *_latency_cells(cand),
         DASH if comparison.speedup is None else f"{comparison.speedup:.2f}x",
         num(size_mb(cand.size_bytes), ".3f")],
    ]  # fmt: skip
    return rows


def device_line(device: dict[str, Any], *, threads: int | None = None) -> str:
    """``cpu: ... | cores: 4 | machine: aarch64 | runtime: ai-edge-litert 1.4.0 | python 3.11 | numpy 2.2.6``."""
    runtime = device.get("runtime") or {}
    parts = [
        f"cpu: {device.get('cpu', '?')}",
        f"cores: {device.get('cores', '?')}",
        f"machine: {device.get('machine', '?')}",
        f"runtime: {runtime.get('name', '?')} {runtime.get('version', '?')}" if isinstance(runtime, dict)
        else f"runtime: {runtime}",
        f"python {device.get('python', '?')}",
        f"numpy {device.get('numpy', '?')}",
    ]  # fmt: skip
    if threads is not None:
        parts.append(f"threads: {threads}")
    return " | ".join(parts)


def notes(comparison: Comparison) -> list[str]:
    """Lines shown under the table: emulation label, incomplete runs."""
    lines = []
    if comparison.emulated:
        lines.append(EMULATED_LABEL)
    if comparison.flips is not None:
        lost, gained = comparison.flips

        lines.append(
            f"top-1 vs labels: quant lost {lost} and gained {gained} of {comparison.candidate.samples} samples "
            f"(McNemar p = {mcnemar_p(lost, gained):.3g})"
        )
    for summary in (comparison.baseline, comparison.candidate):
        if not summary.complete:
            lines.append(f"INCOMPLETE run for {summary.tag}: {summary.error or 'interrupted'} (partial figures)")
    return lines


def comparison_table(comparison: Comparison, *, title: str = "edgesep validate") -> Table:
    from rich.table import Table

    latency_title = " [EMULATED latency]" if comparison.emulated else ""
    caption = f"float = {comparison.baseline.model_name}, quant = {comparison.candidate.model_name}\n" + device_line(
        comparison.device, threads=comparison.baseline.threads
    )
    table = Table(title=title + latency_title, caption=caption)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=column != "model")
    for row in comparison_rows(comparison):
        table.add_row(*row)
    return table


BENCH_COLUMNS = ("model", "runs", "p50 ms", "p90 ms", "p99 ms", "mean ms", "std ms", "vs first", "size MB", "runtime")


def bench_rows(summaries: Sequence[ModelSummary], runtimes: Sequence[str]) -> list[list[str]]:
    """One row per model; "vs first" is the first model's median latency / this one's (>1 = faster)."""

    first = summaries[0].latency if summaries else None
    rows = []
    for s, runtime in zip(summaries, runtimes):
        ratio = speedup(first, s.latency)
        rows.append([s.model_name, str(0 if s.latency is None else s.latency.runs), *_latency_cells(s),
                     DASH if ratio is None else f"{ratio:.2f}x", num(size_mb(s.size_bytes), ".3f"), runtime])  # fmt: skip
    return rows


def bench_table(summaries: Sequence[ModelSummary], runtimes: Sequence[str], *, device: dict, emulated: bool) -> Table:
    from rich.table import Table

    title = "edgesep bench" + (" [EMULATED latency]" if emulated else "")
    table = Table(title=title, caption=device_line(device, threads=summaries[0].threads if summaries else None))
    for column in BENCH_COLUMNS:
        table.add_column(column, justify="left" if column in ("model", "runtime") else "right")
    for row in bench_rows(summaries, runtimes):
        table.add_row(*row)
    return table


MULTI_COLUMNS = ("device", *COLUMNS, "vs ref top-1", "vs ref max-abs")


def multi_device_rows(report) -> list[list[str]]:
    """Rows per device x model (a :class:`~edgesep.validate.multi.MultiDeviceReport`); the first device is the reference."""
    cross = {entry.device: entry for entry in report.cross_device}
    rows = []
    for index, single in enumerate(report.reports):
        name = single.device + (" (emulated)" if single.comparison.emulated else "")
        entry = cross.get(single.device)
        for row, fidelity in zip(comparison_rows(single.comparison), (entry and entry.float_fidelity, entry and entry.quant_fidelity)):
            if index == 0:
                extra = ["ref", "ref"]
            else:
                extra = [pct(fidelity.top1_agreement), num(fidelity.max_abs, ".4g")] if fidelity else [DASH, DASH]
            rows.append([name, *row, *extra])
    return rows


def multi_device_table(report, *, title: str = "edgesep validate") -> Table:
    from rich.table import Table

    emulated = any(single.comparison.emulated for single in report.reports)
    lines = [f"{single.device}: {device_line(single.comparison.device, threads=single.threads)}" for single in report.reports]
    table = Table(title=title + (" [some latency EMULATED]" if emulated else ""), caption="\n".join(lines))
    for column in MULTI_COLUMNS:
        table.add_column(column, justify="left" if column in ("device", "model") else "right", no_wrap=True)
    for row in multi_device_rows(report):
        table.add_row(*row)
    return table


def variant_rows(reports: Sequence) -> list[dict[str, Any]]:
    """The rows of ``edgesep run``'s summary (JSON-ready) for :func:`~edgesep.validate.step.validate_variants`'s
    reports on one device: the float baseline first, then one row per variant (size, accuracy, agreement, latency)."""
    if not reports:
        return []
    first = reports[0]
    baseline = first.comparison.baseline
    rows = [_variant_row(first.device, BASELINE_VARIANT, baseline, baseline=baseline)]
    for report in reports:
        comparison = report.comparison
        tag = next(tag for tag in report.results if tag != BASELINE_VARIANT)
        rows.append(_variant_row(report.device, tag, comparison.candidate, baseline=baseline, comparison=comparison))
    return rows


def _variant_row(
    device: str, variant: str, summary: ModelSummary, *, baseline: ModelSummary, comparison: Comparison | None = None
) -> dict[str, Any]:
    p50 = summary.latency.p50 if summary.latency is not None else None
    base_p50 = baseline.latency.p50 if baseline.latency is not None else None
    agreement = comparison.agreement if comparison is not None else None
    return {
        "device": device,
        "variant": variant,
        "model": summary.model_name,
        "size_kb": summary.size_bytes / 1024,
        "accuracy": None if summary.top1 is None else 100 * summary.top1,
        "top5": None if summary.top5 is None else 100 * summary.top5,
        "agreement": 100.0 if comparison is None else (
            None if agreement is None or agreement.top1_agreement is None else 100 * agreement.top1_agreement),
        "cosine": 1.0 if comparison is None else (None if agreement is None else agreement.cosine),
        "max_abs": 0.0 if comparison is None else (None if agreement is None else agreement.max_abs),
        "p50_ms": p50,
        "p90_ms": summary.latency.p90 if summary.latency is not None else None,
        "speedup": (base_p50 / p50) if p50 and base_p50 else None,
        "accuracy_drop_pp": None if comparison is None else comparison.accuracy_drop_pp,
        "samples": summary.samples,
        "emulated": bool(summary.emulated),
        "complete": bool(summary.complete),
    }  # fmt: skip


def device_slug(name: str) -> str:
    """A folder name for a device name/URL: ``ssh://pi@host:22`` -> ``ssh-pi-host-22``."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-.") or "device"
