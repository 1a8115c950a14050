"""``edgesep export``: PyTorch -> verified ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app, echo
from edgesep.cli.parsing import parse_shape, resolve_model_reference
from edgesep.export import export
from edgesep.numerics import DEFAULT_TOLERANCE


@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="'file.py:factory', 'package.module:factory', or 'default' (the trained digits SepCNN)."),
    output: Path = typer.Option(..., "-o", "--output", help="The .onnx file to write."),
    input_shape: str = typer.Option(None, "--input-shape", help="N,C,H,W (default: the model's input_shape)."),
    weights: Path = typer.Option(None, "--weights", help="State dict checkpoint, loaded with weights_only=True."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Make the batch dimension dynamic."),
    no_simplify: bool = typer.Option(False, "--no-simplify", help="Skip onnxslim constant folding."),
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE,
        "--tolerance",
        help="Max-abs error relative to each output's scale (max |reference|, at least 0.01).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Export a PyTorch model to ONNX and verify it against PyTorch in onnxruntime."""

    result = export(
        resolve_model_reference(model),
        output,
        input_shape=parse_shape(input_shape),
        weights=weights,
        opset=opset,
        dynamic_batch=dynamic_batch,
        simplify=not no_simplify,
        tolerance=tolerance,
        force=force,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    fid = result.fidelity
    echo(f"exported {result.source} -> {result.path} (opset {result.opset}, {result.size_bytes / 1e6:.2f} MB)")
    typer.echo(
        f"verified vs PyTorch: max-abs {fid.max_abs:.3g} (relative {fid.relative:.3g}), cosine {fid.cosine:.8f}, "
        f"top-1 agreement {_fmt(fid.top1_agreement)}; input {list(result.input_shape)}, {result.seconds:.1f} s"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
