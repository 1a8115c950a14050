"""``edgesep validate``: float vs quantized on a device, side by side (accuracy, agreement, latency, size)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.errors import InputError

if TYPE_CHECKING:
    from tqdm import tqdm


@app.command("validate")
def validate_command(
    float_model: Path = typer.Option(None, "--float", help="The float .tflite baseline."),
    quant_model: Path = typer.Option(None, "--quant", help="The quantized .tflite (its sidecar gives the preprocessing)."),
    data: str = typer.Option(None, "--data", help="'digits', a .npz with x (and y) arrays, a .npy, or an image folder."),
    results: Path = typer.Option(
        None, "--results", help="Compare float/quant results files already measured in this folder (runs nothing)."
    ),
    labels: Path = typer.Option(None, "--labels", help="Labels (.npy/.npz/.txt), overriding those in --data."),
    devices: list[str] = typer.Option(
        ["local"], "--device", help="local, a profile (rpi4, pi-emulated, ...), ssh://, adb:// or a .toml; repeat to compare devices."
    ),
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
    from edgesep.validate.step import STAGES, validate

    if report and output_dir is None:
        raise InputError("--report needs --output-dir (nothing is written into the current folder)")
    if results is not None:
        _compare_only(results, data=data, labels=labels, output_dir=output_dir, report=report is not False,
                      force=force, as_json=as_json, fail_if_drop=fail_if_drop)  # fmt: skip
        return
    missing = [flag for flag, value in (("--float", float_model), ("--quant", quant_model), ("--data", data)) if value is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (or give --results DIR to compare existing results files)")
    spec = RunSpec(runs=runs, warmup=warmup, threads=threads, timeout_s=timeout)
    options = dict(labels=labels, spec=spec, samples=samples, report=report is not False, force=force)
    stages = len(STAGES) if output_dir is not None and report is not False else len(STAGES) - 1
    if len(devices) > 1:
        _validate_many(float_model, quant_model, data=data, devices=devices, output_dir=output_dir,
                       as_json=as_json, fail_if_drop=fail_if_drop, stages=stages, options=options)  # fmt: skip
        return
    with _stage_bar(stages) as on_stage:
        result = validate(float_model, quant_model, data=data, device=devices[0], output_dir=output_dir,
                          on_stage=on_stage, **options)  # fmt: skip
    _emit(result, as_json=as_json, fail_if_drop=fail_if_drop)


def _emit(result, *, as_json: bool, fail_if_drop: float | None) -> None:
    """Print one validation report (JSON or table), then apply the --fail-if-drop gate."""
    from edgesep.validate.step import check_accuracy_drop

    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_table(result)
    if fail_if_drop is not None:
        check_accuracy_drop(result, fail_if_drop)


def _compare_only(results, *, data, labels, output_dir, report, force, as_json, fail_if_drop) -> None:
    from edgesep.validate.step import compare_results

    result = compare_results(results, data=data, labels=labels, output_dir=output_dir, report=report, force=force)
    _emit(result, as_json=as_json, fail_if_drop=fail_if_drop)


def _validate_many(float_model, quant_model, *, data, devices, output_dir, as_json, fail_if_drop, stages, options):
    from edgesep.validate.multi import validate_on_devices
    from edgesep.validate.step import check_accuracy_drop
    from edgesep.validate.table import make_console, multi_device_table, notes

    with _stage_bar(stages * len(devices)) as on_stage:
        result = validate_on_devices(float_model, quant_model, data=data, devices=devices, output_dir=output_dir,
                                     on_stage=on_stage, **options)  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        console = make_console()
        console.print(multi_device_table(result, title=f"edgesep validate ({result.reports[0].samples} samples)"))
        for single in result.reports:
            for line in notes(single.comparison):
                console.print(f"{single.device}: {line}", style="bold yellow", markup=False)
        for path in result.report_files[:2]:
            echo(f"report: {path}")
    if fail_if_drop is not None:
        for single in result.reports:
            check_accuracy_drop(single, fail_if_drop)


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
        self.bar: tqdm[Any] | None = None
        self.done = -1  # stages finished; the first on_stage call starts stage 0

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, desc="validate", disable=not progress_enabled(), leave=False)
        return self.advance

    def advance(self, name: str) -> None:
        assert self.bar is not None, "advance() called outside the with block"
        if self.done >= 0:
            self.bar.update(1)
        self.done += 1
        self.bar.set_description(name)

    def __exit__(self, *exc) -> None:
        assert self.bar is not None
        if exc[0] is None and self.done >= 0:
            self.bar.update(1)
        self.bar.close()
