"""Entry point: registers the commands and turns edgesep errors into one line + exit code."""

from __future__ import annotations

import importlib
import importlib.util
import sys

from edgesep.cli.app import OPTIONS, app
from edgesep.errors import EdgesepError

COMMAND_MODULES = (
    "train",
    "inspect",
    "export",
    "convert",
    "quantize",
    "validate",
    "bench",
    "run",
    "prune",
    "distill",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = f"edgesep.cli.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    import click

    _register_commands()
    command = __import__("typer.main", fromlist=["get_command"]).get_command(app)
    try:
        result = command.main(args=argv, prog_name="edgesep", standalone_mode=False)
    except EdgesepError as error:
        if OPTIONS.debug:
            raise
        print(f"edgesep: error: {error}", file=sys.stderr)
        return error.exit_code
    except click.exceptions.Abort:
        print("edgesep: interrupted", file=sys.stderr)
        return 130
    except click.ClickException as error:
        error.show()
        return 2
    except click.exceptions.Exit as done:
        return done.exit_code
    except KeyboardInterrupt:
        print("edgesep: interrupted", file=sys.stderr)
        return 130
    if result == 130 and isinstance(result, int):  # typer turns Ctrl-C into Exit(130) and returns its code
        print("edgesep: interrupted", file=sys.stderr)
        return 130
    return 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
