"""``edgesep prune``: structured channel pruning to a smaller dense model checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.cli.parsing import parse_shape, resolve_model_reference
from edgesep.fileio import check_output
from edgesep.prune import PruneConfig, prune
from edgesep.prune.checkpoint import resolve_model, save_pruned


@app.command("prune")
def prune_command(
    model: str = typer.Argument(
        ..., help="'file.py:factory', 'package.module:factory', 'default' (trained digits SepCNN) or a pruned .pt."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="The pruned checkpoint (.pt) to write."),
    ratio: float = typer.Option(None, "--ratio", help="Fraction of channels removed per group, in (0, 1) (default 0.5)."),
    max_params: int = typer.Option(None, "--max-params", help="Parameter budget instead of --ratio."),
    max_macs: int = typer.Option(None, "--max-macs", help="MAC budget instead of --ratio."),
    criterion: str = typer.Option("l1", "--criterion", help="Channel importance: l1, l2 or bn (BN scale)."),
    round_to: int = typer.Option(8, "--round-to", help="Round kept channel counts to this multiple."),
    finetune: int = typer.Option(0, "--finetune", help="Fine-tune epochs (on --data)."),
    data: str = typer.Option("digits", "--data", help="'digits' or a .npz with x_train, y_train, x_test, y_test (NCHW float32)."),
    weights: Path = typer.Option(None, "--weights", help="State dict for the factory (weights_only=True)."),
    input_shape: str = typer.Option(None, "--input-shape", help="N,C,H,W (default: the model's input_shape)."),
    seed: int = typer.Option(0, "--seed", help="Seed of fine-tuning."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Remove the least important channels (really, not masks) and save a smaller model."""
    from edgesep.prune.data import load_labeled

    config = PruneConfig(
        ratio=ratio, max_params=max_params, max_macs=max_macs, criterion=criterion,
        round_to=round_to, finetune_epochs=finetune, seed=seed,
    )  # fmt: skip
    check_output(output, force=force)
    module, source = resolve_model(resolve_model_reference(model), weights=weights)
    labeled = load_labeled(data) if finetune > 0 or data != "digits" else None
    result = prune(module, config=config, data=labeled, input_shape=parse_shape(input_shape), progress=progress_enabled())
    summary = {**result.to_dict(), "config": config.to_dict()}
    save_pruned(result.model, output, source=source, input_shape=result.input_shape, summary=summary, force=force)
    if as_json:
        typer.echo(json.dumps({"path": str(output), "source": source, **summary}, indent=2))
        return
    _print_table(result)
    echo(f"wrote {output}")


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pruned channels (ratio {result.ratio:.3f})")
    table.add_column("group (first producer)")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for name, (before, after) in result.kept_channels.items():
        table.add_row(name, str(before), str(after))
    console = Console(soft_wrap=True)
    console.print(table)
    summary = Table()
    for column in ("", "before", "after", "change"):
        summary.add_column(column, justify="right")
    summary.add_row("params", f"{result.params_before:,}", f"{result.params_after:,}", _pct(result.params_before, result.params_after))
    summary.add_row("MACs", f"{result.macs_before:,}", f"{result.macs_after:,}", _pct(result.macs_before, result.macs_after))
    if result.accuracy_after is not None:
        summary.add_row("accuracy", f"{result.accuracy_before:.4f}", f"{result.accuracy_after:.4f}",
                        f"{100 * (result.accuracy_after - result.accuracy_before):+.2f} pt")  # fmt: skip
    console.print(summary)


def _pct(before: int, after: int) -> str:
    return f"{100 * (after - before) / max(1, before):+.1f}%"
