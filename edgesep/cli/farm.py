"""``edgesep farm sweep.toml``: models x quantization recipes x devices as Ray tasks, one table (extra ``farm``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.errors import IncompleteError, InputError


@app.command("farm")
def farm_command(
    sweep: Path = typer.Argument(..., help="Sweep TOML: [[models]] x [[recipes]] x devices (see docs/farm.md)."),
    address: str = typer.Option(
        None,
        "--address",
        help="Ray cluster: ray://host:10001, auto or host:port (default: $RAY_ADDRESS, else Ray embedded in this process with all cores).",
    ),
    output: Path = typer.Option(None, "-o", "--output", help="Output folder (overrides the sweep's)."),
    num_cpus: int = typer.Option(None, "--num-cpus", min=1, help="Embedded Ray: CPUs to use (default: all)."),
    force: bool = typer.Option(False, "--force", help="Re-run every cell even when its inputs did not change."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Run a matrix of models x recipes x devices on Ray; only cells whose inputs changed run again."""
    from edgesep.farm import load_sweep
    from edgesep.farm.cluster import cluster_address
    from edgesep.farm.driver import FarmOptions, farm
    from edgesep.farm.report import print_table

    if num_cpus is not None and cluster_address(address) is not None:
        raise InputError("--num-cpus sizes embedded Ray; a cluster's nodes have theirs (ray start --num-cpus)")
    config = load_sweep(sweep)
    if output is not None:
        config = dataclasses.replace(config, output=output.resolve())
    echo(
        f"farm: {len(config.models)} model(s) x {len(config.recipes)} recipe(s) x {len(config.devices)} device(s)"
        f" = {config.cells} cells -> {config.output}"
    )
    result = farm(config, options=FarmOptions(address=address, force=force, num_cpus=num_cpus, progress=progress_enabled() and not as_json))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print_table(result)
        echo(f"table in {result.output / 'sweep.json'} and {result.output / 'report.md'}")
    if result.incomplete:
        raise IncompleteError(
            f"{len(result.incomplete)} of {len(result.cells)} cells lost or failed (kept: the "
            f"others); run the same command again to complete only them"
        )
