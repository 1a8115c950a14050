"""``edgesep convert``: ONNX -> float32 TFLite, verified against onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app, echo
from edgesep.cli.parsing import parse_input_shapes
from edgesep.convert import convert
from edgesep.numerics import DEFAULT_TOLERANCE


@app.command("convert")
def convert_command(
    model: Path = typer.Argument(..., help="The .onnx file (or a .keras/.h5/SavedModel folder)."),
    output: Path = typer.Option(..., "-o", "--output", help="The .tflite file to write."),
    keep_nchw: bool = typer.Option(False, "--keep-nchw", help="Keep the ONNX NCHW input/output layout."),
    input_shape: list[str] = typer.Option(
        None,
        "--input-shape",
        help="N,C,H,W in the ONNX layout for dynamic dims; NAME:N,C,H,W once per input for several inputs.",
    ),
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE,
        "--tolerance",
        help="Max-abs error relative to each output's scale (max |reference|, at least 0.01).",
    ),
    verify_data: Path = typer.Option(None, "--verify-data", help="Your inputs to verify on: .npy (one input) or .npz by input name; NCHW."),
    report: bool = typer.Option(False, "--report", help="Print the op histogram and the ops XNNPACK leaves out."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Convert an ONNX model to a float32 TFLite model (NHWC) and verify it against onnxruntime."""

    echo(f"converting {model} ...")
    result = convert(
        model,
        output,
        keep_nchw=keep_nchw,
        input_shape=parse_input_shapes(input_shape),
        verify_data=verify_data,
        tolerance=tolerance,
        force=force,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    fid = result.fidelity
    echo(f"converted {result.source} -> {result.path} ({result.size_bytes / 1e6:.2f} MB, {result.seconds:.1f} s)")
    typer.echo(
        f"verified vs onnxruntime: max-abs {fid.max_abs:.3g} (relative {fid.relative:.3g}), cosine {fid.cosine:.8f}; "
        f"input {result.input_layout} {[list(s) for s in result.input_shapes]}, "
        f"{sum(result.op_histogram.values())} ops, {result.transposes} transposes"
    )
    runtime = result.runtime
    left_out = runtime.get("left_out", [])
    typer.echo(
        f"runtime: {runtime.get('partitions', 0)} {runtime.get('delegate', 'XNNPACK')} partition(s), "
        + (f"all {runtime.get('ops', 0)} ops delegated" if not left_out else f"{len(left_out)} op(s) left to TFLite's kernels")
    )
    if report:
        _print_histogram(result.op_histogram)
        for op in left_out:
            typer.echo(f"  left out: #{op['index']} {op['op']}" + (f" ({op['reason']})" if op.get("reason") else ""))


def _print_histogram(histogram: dict[str, int]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="TFLite ops")
    table.add_column("op")
    table.add_column("count", justify="right")
    for name, count in sorted(histogram.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(name, str(count))
    Console().print(table)
