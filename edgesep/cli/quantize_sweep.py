"""``edgesep quantize --sweep``: run the recipe sweep and print its table (helper of edgesep/cli/quantize.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import echo, progress_enabled
from edgesep.errors import InputError, ThresholdError


def run_sweep(
    model: Path,
    output: Path | None,
    *,
    recipe,
    torch_model,
    torch_weights,
    calib,
    latency_budget_ms,
    holdout: int,
    as_json: bool,
    force: bool,
) -> None:
    """Sweep the default candidates built on ``recipe``; print a table or JSON; write the chosen model to ``output``."""
    from edgesep.quantize.sweep import sweep

    if recipe.mode != "int8":
        raise InputError(f"--sweep compares int8 recipes; drop --mode {recipe.mode}")
    if calib is None:
        raise InputError("--sweep needs calibration data (--calib)")
    echo(f"sweeping int8 recipes for {model} ...")
    result = sweep(
        model,
        calibration=calib,
        model=torch_model,
        weights=torch_weights,
        base=recipe,
        latency_budget_ms=latency_budget_ms,
        holdout=holdout,
        output=output,
        force=force,
        progress=progress_enabled() and not as_json,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    _print_table(result)


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    budget = "" if result.latency_budget_ms is None else f", p50 budget {result.latency_budget_ms:g} ms"
    table = Table(title=f"recipe sweep on {result.eval_samples} held-out samples (vs float32 TFLite{budget})")
    for column in ("recipe", "agreement", "cosine", "accuracy", "p50 ms", "size kB", "chosen"):
        table.add_column(column, justify="left" if column in ("recipe", "chosen") else "right", no_wrap=column != "recipe")
    for row in result.rows:
        if row.skipped:
            table.add_row(row.name, "-", "-", "-", "-", "-", "skipped")
            continue
        table.add_row(
            row.name,
            "n/a" if row.top1_agreement is None else f"{row.top1_agreement:.2%}",
            f"{row.cosine:.5f}",
            "n/a" if row.accuracy is None else f"{row.accuracy:.2%}",
            f"{row.p50_ms:.3f}",
            f"{row.size_bytes / 1e3:.1f}",
            "*" if row.name == result.chosen else "",
        )
    console = Console()
    console.print(table)
    for row in result.rows:
        if row.skipped:
            console.print(f"skipped {row.name}: {row.skipped}")
    written = f"; wrote {result.path}" if result.path else " (write it with -o)"
    console.print(f"chosen: {result.chosen}{written}")


def run_search(model: Path, output: Path, *, recipe, calib, metric: str, target: float, holdout: int, input_shape,
               as_json: bool, force: bool) -> None:  # fmt: skip
    """``--target``: the recipe search; a table of what was tried (or JSON); exit 1 when nothing met the target."""
    from edgesep.quantize.sweep import search

    if calib is None:
        raise InputError("--target needs calibration data (--calib)")
    echo(f"searching int8 recipes for {model} until {metric} >= {target:g} ...")
    try:
        result = search(model, output, calibration=calib, metric=metric, target=target, base=recipe, holdout=holdout,
                        input_shape=input_shape, force=force, progress=progress_enabled() and not as_json)  # fmt: skip
    except ThresholdError:
        from edgesep.sidecar import read_sidecar

        written = read_sidecar(output)
        if written is not None and "search" in written.extra:
            _print_search(written.extra["search"], as_json=as_json)
        raise
    _print_search(result.to_dict(), as_json=as_json)


def _print_search(payload: dict, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"int8 recipe search: {payload['metric']} >= {payload['target']:g} vs float32 "
                        f"(float p50 {payload['float_latency_ms']:.3f} ms)")  # fmt: skip
    for column in ("recipe", payload["metric"], "latency ms", "partitions", "size kB", "chosen"):
        table.add_column(column, justify="left" if column in ("recipe", "chosen") else "right", no_wrap=column != "recipe")
    for step in payload["steps"]:
        table.add_row(step["name"], f"{step['metric_value']:.4f}", f"{step['latency_ms']:.3f}", str(step["partitions"]),
                      f"{step['size_bytes'] / 1e3:.1f}", "*" if step["name"] == payload["chosen"] else "")  # fmt: skip
    console = Console()
    console.print(table)
    met = "met" if payload["met"] else "NOT met (the best one found)"
    console.print(f"chosen: {payload['chosen']}, target {met}; wrote {payload['path']}")
