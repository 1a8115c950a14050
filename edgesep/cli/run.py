"""``edgesep run``: the whole pipeline from one config file (or the built-in digits default)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from edgesep.cli.app import app, progress_enabled

COLUMNS = (
    ("device", "device", "{}"),
    ("variant", "model", "{}"),
    ("size_kb", "size KB", "{:.1f}"),
    ("accuracy", "accuracy %", "{:.2f}"),
    ("agreement", "top-1 agr. %", "{:.2f}"),
    ("cosine", "cosine", "{:.5f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("speedup", "speed-up", "{:.2f}x"),
)


@app.command("run")
def run_command(
    config: Path = typer.Argument(None, help="Pipeline TOML (default: the built-in digits SepCNN pipeline)."),
    output: Path = typer.Option(None, "-o", "--output", help="Output folder (overrides the config's)."),
    from_step: str = typer.Option(None, "--from", help="Start at this step: prune, distill, export, convert, quantize, validate."),
    only_step: str = typer.Option(None, "--only", help="Run only this step."),
    until_step: str = typer.Option(None, "--until", help="Stop after this step (e.g. convert)."),
    device: list[str] = typer.Option(None, "--device", help="Device(s) to validate on (overrides the config)."),
    fail_if_drop: float = typer.Option(None, "--fail-if-drop", help="Exit 1 if int8 accuracy drops more (points)."),
    force: bool = typer.Option(False, "--force", help="Re-run steps even when their inputs did not change."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Export -> convert -> quantize -> validate, writing every artifact and a report into one folder."""
    from edgesep.pipeline import DEFAULT_CONFIG, RunOptions, load_config, run

    pipeline = load_config(config) if config is not None else DEFAULT_CONFIG
    if output is not None:
        pipeline = dataclasses.replace(pipeline, output=str(output.resolve()))
    if device:
        pipeline = dataclasses.replace(pipeline, devices=tuple(device))
    if fail_if_drop is not None:
        pipeline = dataclasses.replace(pipeline, validate=dataclasses.replace(pipeline.validate, fail_if_drop=fail_if_drop))
    result = run(
        pipeline,
        options=RunOptions(from_step=from_step, only_step=only_step, until_step=until_step, force=force, progress=progress_enabled()),
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    print_rows(result.rows)
    for step in result.steps:
        if step.status != "ran":
            reason = "inputs unchanged" if step.status == "skipped" else "kept from an earlier run"
            typer.echo(f"  {step.name}: {step.status} ({reason})", err=True)
    typer.echo(
        f"artifacts in {result.output}; summary {result.summary_path}" + (f"; report {result.report_path}" if result.report_path else "")
    )


def print_rows(rows) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edgesep: float vs quantized")
    for _, title, _ in COLUMNS:
        table.add_column(title, justify="left" if title in ("device", "model") else "right")
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(*cells)
    Console(width=140).print(table)
    emulated = sorted({row["device"] for row in rows if row.get("emulated")})
    if emulated:
        typer.echo(f"note: latency on {', '.join(emulated)} is EMULATED (qemu), not the real board's latency")
