"""Rich tables for ``edgesep inspect`` (imported lazily by the command)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from edgesep.models.accounting import ModelAccounting


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _console() -> Console:
    import sys

    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def print_accounting(acc: ModelAccounting) -> None:
    console = _console()
    layers = Table(title=f"{acc.source}  ({acc.format}, input {list(acc.input_shape)})")
    for column in ("layer", "type", "kernel", "in", "out", "groups", "output", "params", "MACs"):
        layers.add_column(column, justify="right" if column in ("in", "out", "groups", "params", "MACs") else "left")
    for row in acc.layers:
        kernel = "x".join(map(str, row.kernel)) if row.kernel else ""
        output = "x".join(map(str, row.output_shape)) if row.output_shape else ""
        layers.add_row(
            row.name, row.type, kernel, _n(row.in_channels), _n(row.out_channels), _n(row.groups), output,
            _n(row.params), _n(row.macs),
        )  # fmt: skip
    layers.add_section()
    layers.add_row("total", "", "", "", "", "", "", _n(acc.total_params), _n(acc.total_macs))
    console.print(layers)
    if acc.pairs:
        console.print(_pairs_table(acc))
    else:
        console.print("no depthwise -> pointwise pairs found")
    for note in acc.notes:
        console.print(f"note: {note}")


def _pairs_table(acc: ModelAccounting) -> Table:
    table = Table(title="depthwise-separable pairs vs the standard KxK conv they replace")
    for column in ("depthwise -> pointwise", "K", "C", "M", "HxW", "weights", "std weights", "MACs", "std MACs",
                   "ratio", "1/M+1/K^2", "saving"):  # fmt: skip
        table.add_column(column, justify="left" if column.startswith("depthwise") else "right")
    for p in acc.pairs:
        kh, kw = p.kernel
        table.add_row(
            f"{p.depthwise} -> {p.pointwise}", f"{kh}x{kw}", str(p.in_channels), str(p.out_channels),
            f"{p.output_hw[0]}x{p.output_hw[1]}", _n(p.params), _n(p.standard_params), _n(p.macs),
            _n(p.standard_macs), f"{p.ratio:.4f}", f"{1 / p.out_channels + 1 / (kh * kw):.4f}", f"{p.saving:.2f}x",
        )  # fmt: skip
    table.add_section()
    std_w, std_m = acc.standard_equivalent_params, acc.standard_equivalent_macs
    table.add_row(
        "all pairs", "", "", "", "", _n(acc.separable_params), _n(std_w), _n(acc.separable_macs), _n(std_m),
        f"{acc.separable_params / std_w:.4f}", "", f"{std_w / acc.separable_params:.2f}x",
    )  # fmt: skip
    return table


def print_comparison(a: ModelAccounting, b: ModelAccounting) -> None:
    table = Table(title="model comparison")
    table.add_column("")
    table.add_column(a.source, justify="right")
    table.add_column(b.source, justify="right")
    table.add_column("B / A", justify="right")
    rows = [
        ("input", list(a.input_shape), list(b.input_shape)),
        ("params", a.total_params, b.total_params),
        ("MACs", a.total_macs, b.total_macs),
        ("conv/linear weights", a.total_weights, b.total_weights),
        ("separable pairs", len(a.pairs), len(b.pairs)),
    ]
    for label, x, y in rows:
        ratio = f"{y / x:.3f}" if isinstance(x, int) and isinstance(y, int) and x else ""
        shown = [str(v) if isinstance(v, list) else f"{v:,}" for v in (x, y)]
        table.add_row(label, *shown, ratio)
    _console().print(table)
