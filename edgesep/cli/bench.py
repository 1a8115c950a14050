"""``edgesep bench``: latency only, for any .tflite models, on a device."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app, progress_enabled


@app.command("bench")
def bench_command(
    models: list[Path] = typer.Argument(..., help="One or more .tflite files (third-party ones too)."),
    device: str = typer.Option("local", "--device", help="local, a profile (rpi4, android, ...), ssh://, adb:// or a .toml."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per model."),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up runs per model, excluded from the statistics."),
    threads: int = typer.Option(None, "--threads", help="Interpreter threads (default: the runtime's choice)."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per device run before it is stopped."),
    no_xnnpack: bool = typer.Option(False, "--no-xnnpack", help="Run without the XNNPACK delegate."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Keep the results files in this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing results files."),
) -> None:
    """Measure inference latency (warm-up excluded) of each model on a device, with seeded random inputs."""
    from tqdm import tqdm

    from edgesep.devices.base import RunSpec
    from edgesep.validate.bench import benchmark

    spec = RunSpec(runs=runs, warmup=warmup, threads=threads, timeout_s=timeout, use_xnnpack=not no_xnnpack)
    with tqdm(total=len(models), desc="bench", disable=not progress_enabled(), leave=False) as bar:
        started: list[str] = []

        def on_model(name: str) -> None:
            if started:
                bar.update(1)
            started.append(name)
            bar.set_description(name)

        result = benchmark(models, device=device, spec=spec, output_dir=output_dir, force=force, on_model=on_model)
        bar.update(1)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    from edgesep.validate.table import EMULATED_LABEL, bench_table, make_console

    console = make_console()
    summaries = [entry.summary for entry in result.entries]
    console.print(bench_table(summaries, [e.runtime for e in result.entries], device=result.device_facts,
                              emulated=result.emulated))  # fmt: skip
    if result.emulated:
        console.print(EMULATED_LABEL, style="bold yellow", markup=False)
