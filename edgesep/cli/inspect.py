"""``edgesep inspect``: per-layer parameters and MACs, and what each depthwise-separable pair saves."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app
from edgesep.cli.inspect_view import print_accounting, print_comparison
from edgesep.cli.parsing import parse_shape, resolve_model_reference
from edgesep.errors import InputError
from edgesep.models.accounting import count_model
from edgesep.models.loading import load_factory, load_weights


@app.command("inspect")
def inspect_command(
    model: str = typer.Argument(
        ..., help="'file.py:factory', 'package.module:factory', 'default' (the trained digits SepCNN) or a .onnx file."
    ),
    input_shape: str = typer.Option(None, "--input-shape", help="N,C,H,W (default: the model's input_shape)."),
    weights: Path = typer.Option(None, "--weights", help="State dict checkpoint for a factory model."),
    compare: str = typer.Option(None, "--compare", help="A second model to show side by side (params, MACs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the accounting as JSON."),
) -> None:
    """Show parameters and MACs per layer, totals, and the standard-conv equivalent of each separable pair."""

    shape = parse_shape(input_shape)
    first = account(model, input_shape=shape, weights=weights)
    if compare is not None:
        second = account(compare, input_shape=shape)
        if as_json:
            typer.echo(json.dumps({"a": first.to_dict(), "b": second.to_dict()}, indent=2))
        else:
            print_comparison(first, second)
        return
    if as_json:
        typer.echo(json.dumps(first.to_dict(), indent=2))
    else:
        print_accounting(first)


def account(model: str, *, input_shape=None, weights: Path | None = None):
    """Accounting of a model named on the command line (factory reference, 'default' or .onnx path)."""

    if model.lower().endswith(".onnx"):
        if weights is not None:
            raise InputError("--weights applies to PyTorch factories, not to .onnx files")
        return count_model(Path(model), input_shape=input_shape)

    reference = resolve_model_reference(model)
    module = load_factory(reference)
    if weights is not None:
        load_weights(module, weights)
    return count_model(module, input_shape=input_shape, source=model)
