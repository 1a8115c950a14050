"""``edgesep validate``: float vs quantized on a device, side by side (accuracy, agreement, latency, size)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app, echo, progress_enabled


@app.command("validate")
def validate_command(
    float_model: Path = typer.Option(..., "--float", help="The float .tflite baseline."),
    quant_model: Path = typer.Option(..., "--quant", help="The quantized .tflite (its sidecar gives the preprocessing)."),
    data: str = typer.Option(..., "--data", help="'digits', a .npz with x (and y) arrays, a .npy, or an image folder."),
    labels: Path = typer.Option(None, "--labels", help="Labels (.npy/.npz/.txt), overriding those in --data."),
    device: str = typer.Option("local", "--device", help="local, a profile (rpi4, android, ...), ssh://, adb:// or a .toml."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per model (at least one per sample)."),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up runs per model, excluded from the statistics."),
    threads: int = typer.Option(None, "--threads", help="Interpreter threads (default: the runtime's choice)."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per device run before it is stopped."),
    samples: int = typer.Option(None, "--samples", help="Use only the first N samples."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Folder for results files and the report."),
    report: bool = typer.Option(None, "--report/--no-report", help="Write report.md/.html + PNGs (default: with --output-dir)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
    fail_if_drop: float = typer.Option(None, "--fail-if-drop", help="Exit 1 if top-1 accuracy drops more than PP points."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing results and report."),
) -> None:
    """Run the float and the quantized model on a device with the same inputs and compare them."""
    from edgesep.devices.base import RunSpec
    from edgesep.errors import InputError
    from edgesep.validate.step import STAGES, check_accuracy_drop, validate

    if report and output_dir is None:
        raise InputError("--report needs --output-dir (nothing is written into the current folder)")
    spec = RunSpec(runs=runs, warmup=warmup, threads=threads, timeout_s=timeout)
    with _stage_bar(len(STAGES) if output_dir is not None and report is not False else len(STAGES) - 1) as on_stage:
        result = validate(
            float_model,
            quant_model,
            data=data,
            labels=labels,
            device=device,
            spec=spec,
            samples=samples,
            output_dir=output_dir,
            report=report is not False,
            force=force,
            on_stage=on_stage,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_table(result)
    if fail_if_drop is not None:
        check_accuracy_drop(result, fail_if_drop)


def _print_table(result) -> None:
    from edgesep.validate.table import comparison_table, make_console, notes

    console = make_console()
    console.print(comparison_table(result.comparison, title=f"edgesep validate on {result.device} ({result.samples} samples)"))
    for line in notes(result.comparison):
        console.print(line, style="bold yellow", markup=False)
    for path in result.report_files[:2]:
        echo(f"report: {path}")


class _stage_bar:
    """A tqdm bar advanced by validate()'s on_stage callback (silent with --quiet)."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None
        self.done = -1  # stages finished; the first on_stage call starts stage 0

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, desc="validate", disable=not progress_enabled(), leave=False)
        return self.advance

    def advance(self, name: str) -> None:
        if self.done >= 0:
            self.bar.update(1)
        self.done += 1
        self.bar.set_description(name)

    def __exit__(self, *exc) -> None:
        if exc[0] is None and self.done >= 0:
            self.bar.update(1)
        self.bar.close()
