"""The Typer application and the global options shared by every command.

Command modules do ``from edgesep.cli.app import app`` and decorate their
function with ``@app.command()``.  They import heavy libraries (torch,
tensorflow, onnxruntime) inside the command body only, so ``edgesep --help``
stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

app = typer.Typer(
    name="edgesep",
    help=(
        "From a PyTorch depthwise-separable CNN to a validated int8 TFLite model on a device.\n\n"
        "Exit codes: 0 ok, 1 a verification tolerance or quality gate was missed, 2 bad input."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class GlobalOptions:
    debug: bool = False
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose


OPTIONS = GlobalOptions()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only results and errors."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More detail (repeatable)."),
) -> None:
    OPTIONS.debug = debug
    OPTIONS.verbosity = -1 if quiet else verbose
    if OPTIONS.verbosity < 2:
        quiet_native_logs()


def quiet_native_logs() -> None:
    """Silence TensorFlow's and absl's C++ info logs (set before tensorflow is imported; -vv keeps them)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def echo(message: str) -> None:
    """Print a progress/info line unless --quiet."""
    if OPTIONS.verbosity >= 0:
        typer.echo(message, err=True)


def progress_enabled() -> bool:
    return OPTIONS.verbosity >= 0
