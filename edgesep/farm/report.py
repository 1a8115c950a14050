"""The sweep's one table (models x recipes x devices): ``<output>/sweep.json``, ``report.md`` and a rich table."""

from __future__ import annotations

from edgesep.fileio import write_json, write_text

COLUMNS = (
    ("accuracy", "accuracy %", "{:.2f}"),
    ("agreement", "top-1 agr. %", "{:.2f}"),
    ("cosine", "cosine", "{:.5f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("speedup", "speed-up", "{:.2f}x"),
    ("size_kb", "size KB", "{:.1f}"),
)


def cell_values(cell) -> list[str]:
    """The numeric columns of one cell ('-' where the cell has no row or the value is None)."""
    row = cell.row or {}
    return ["-" if row.get(key) is None else fmt.format(row[key]) for key, _, fmt in COLUMNS]


def write_reports(result) -> None:
    write_json(result.output / "sweep.json", result.to_dict(), force=True)
    headers = ["model", "recipe", "device", "status", *(title for _, title, _ in COLUMNS), "note"]
    lines = ["# edgesep farm", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for cell in result.cells:
        lines.append(
            "| "
            + " | ".join([cell.model, cell.recipe, cell.device, cell.status, *cell_values(cell), (cell.reason or "").replace("|", "/")])
            + " |"
        )
    lines += ["", "Recipes: " + "; ".join(f"{name} = {text}" for name, text in result.recipes.items())]
    emulated = sorted({cell.device for cell in result.cells if (cell.row or {}).get("emulated")})
    if emulated:
        lines += ["", f"Latency on {', '.join(emulated)} is **EMULATED** (qemu): not the speed of the real board."]
    write_text(result.output / "report.md", "\n".join(lines) + "\n", force=True)


def print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = result.to_dict()["counts"]
    where = result.address or "embedded Ray"
    title = (
        f"edgesep farm: {len(result.cells)} cells on {where}"
        + (f" ({result.nodes} node{'s' if result.nodes != 1 else ''})" if result.nodes else "")
        + " - "
        + ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    )
    table = Table(title=title)
    for name in ("model", "recipe", "device", "status"):
        table.add_column(name, justify="left")
    for _, heading, _ in COLUMNS:
        table.add_column(heading, justify="right")
    styles = {"ok": "green", "cached": "cyan", "lost": "bold red", "failed": "red"}
    previous: tuple[str, str] | None = None
    for cell in result.cells:
        same = previous == (cell.model, cell.recipe)
        previous = (cell.model, cell.recipe)
        table.add_row(
            "" if same else cell.model,
            "" if same else cell.recipe,
            cell.device,
            f"[{styles[cell.status]}]{cell.status}[/]",
            *cell_values(cell),
        )
    console = Console(width=160)
    console.print(table)
    for cell in result.incomplete:
        console.print(f"{cell.status}: {cell.model} / {cell.recipe} / {cell.device}: {cell.reason}", markup=False, highlight=False)
    console.print("recipes: " + "; ".join(f"{name} = {text}" for name, text in result.recipes.items()), markup=False, highlight=False)
    emulated = sorted({cell.device for cell in result.cells if (cell.row or {}).get("emulated")})
    if emulated:
        console.print(
            f"note: latency on {', '.join(emulated)} is EMULATED (qemu), not the real board's latency", markup=False, highlight=False
        )
