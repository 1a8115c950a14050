"""``edgesep device setup|status|stop``: the emulated devices that run on this machine (see edgesep/devices/setups.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.cli.native_stderr import unfiltered_stderr

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from edgesep.devices.setups import OnStep, SetupStatus

device_app = typer.Typer(
    help="Emulated devices on this machine (pi-emulated, android-emulated): start them, see them, stop them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(device_app, name="device")


@device_app.command("setup")
def setup_command(
    name: str = typer.Argument(..., help="The emulated device: pi-emulated or android-emulated."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Build (first time) and start an emulated device; reuse it when it already runs."""
    from edgesep.devices import setups

    setups.load_setup(name)  # an unknown name fails before any bar is drawn
    with _progress_bar() as on_step:
        current = setups.start(name, on_step=on_step)
    if as_json:
        typer.echo(json.dumps(current.to_dict(), indent=2))
        return
    typer.echo(f"{name}: running at {current.address} ({current.detail})")
    typer.echo(f"try: edgesep validate --float F.tflite --quant Q.tflite --data digits --device {name}")
    typer.echo(f"stop it with: edgesep device stop {name}")


@device_app.command("status")
def status_command(
    name: str = typer.Argument(None, help="One emulated device (default: all of them)."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Whether each emulated device runs, with its pid and address."""
    from edgesep.devices import setups

    names = [name] if name else setups.setup_names()
    statuses = [setups.status(each) for each in names]
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in statuses] if name is None else statuses[0].to_dict(), indent=2))
        return
    _print_table(statuses)


@device_app.command("stop")
def stop_command(name: str = typer.Argument(..., help="The emulated device: pi-emulated or android-emulated.")) -> None:
    """Stop an emulated device and remove its state (keys, config, pid)."""
    from edgesep.devices import setups

    typer.echo(f"{name}: {setups.stop(name).detail}")


def _print_table(statuses: list[SetupStatus]) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    from edgesep.devices.setups import state_dir

    table = Table(title="edgesep emulated devices")
    for column in ("device", "state", "pid", "address", "state folder", "detail"):
        table.add_column(column)
    for each in statuses:
        table.add_row(each.name, "running" if each.running else "stopped", str(each.pid or "-"), each.address or "-",
                      str(state_dir(each.name)), each.detail or "-")  # fmt: skip
    (Console() if sys.stdout.isatty() else Console(width=220)).print(table)


@contextmanager
def _progress_bar() -> Iterator[OnStep | None]:
    """A rich bar on a terminal's stderr for the setup's steps (the first arm64 rootfs build); off a terminal one
    line per long step; nothing with --quiet."""
    if not progress_enabled():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with unfiltered_stderr() as stream:
        console = Console(file=stream)
        if not console.is_terminal:

            def log_step(description: str, done: int, total: int | None) -> None:
                if total is None:
                    echo(f"{description} ...")

            yield log_step
            return
        columns = (SpinnerColumn(finished_text="ok"), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console) as progress:
            bar = _StepBar(progress)
            yield bar.on_step
            bar.finish()


class _StepBar:
    """One rich task per setup step (rich cannot turn a known total back into an unknown one)."""

    def __init__(self, progress: Progress):
        import time

        self.progress = progress
        self.started = time.monotonic()
        self.total: int | None = None
        self.task: TaskID | None = None  # none until the first step: an error before it prints one line only

    def on_step(self, description: str, done: int, total: int | None) -> None:
        if self.task is None or total is None or total != self.total:
            self.hide()
            self.task = self.progress.add_task(description, total=total, completed=done)
            self.total = total
        else:
            self.progress.update(self.task, description=description, completed=done)

    def hide(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)

    def finish(self) -> None:
        import time

        self.hide()
        finished = self.progress.add_task(f"set up in {time.monotonic() - self.started:.0f} s", total=1)
        self.progress.update(finished, completed=1)  # a finished task: the spinner column says ok
