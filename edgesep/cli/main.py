"""Entry point: registers the commands and turns edgesep errors into one line + exit code."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

import typer

from edgesep.cli.app import OPTIONS, app
from edgesep.cli.native_stderr import filtered_native_stderr
from edgesep.errors import EdgesepError, EdgesepWarning

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
    "device",
    "farm",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = f"edgesep.cli.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def _usage_error_type() -> type[Exception]:
    """The base class of the usage errors typer raises, through typer's public names only.

    typer >= 0.26 vendors click and raises `typer.TyperException` subclasses; older typer re-exports click's
    `BadParameter`, whose base is `click.ClickException`. edgesep never imports click itself.
    """
    base = getattr(typer, "TyperException", None)
    if isinstance(base, type) and issubclass(base, Exception):
        return base
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _show_usage_error(error: Exception) -> None:
    show = getattr(error, "show", None)
    if callable(show):
        show()
    else:
        print(f"Error: {error}", file=sys.stderr)


def _one_line_warning(fallback):
    """edgesep's own warnings as one ``edgesep: warning:`` line on stderr; others as Python prints them."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, EdgesepWarning):
            print(f"edgesep: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    from typer.main import get_command

    _register_commands()
    usage_error = _usage_error_type()
    command = get_command(app)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", EdgesepWarning)
            warnings.showwarning = _one_line_warning(warnings.showwarning)
            result = command.main(args=argv, prog_name="edgesep", standalone_mode=False)
    except EdgesepError as error:
        if OPTIONS.debug:
            raise
        print(f"edgesep: error: {error}", file=sys.stderr)
        return error.exit_code
    except typer.Abort:
        print("edgesep: interrupted", file=sys.stderr)
        return 130
    except usage_error as error:
        _show_usage_error(error)
        return 2
    except typer.Exit as done:
        return done.exit_code
    except KeyboardInterrupt:
        print("edgesep: interrupted", file=sys.stderr)
        return 130
    if result == 130 and isinstance(result, int):  # typer turns Ctrl-C into Exit(130) and returns its code
        print("edgesep: interrupted", file=sys.stderr)
        return 130
    return 0


def _verbosity_requested(argv: list[str]) -> int:
    """How many -v the global options ask for (counted before the command name, as typer parses them)."""
    count = 0
    for arg in argv:
        if not arg.startswith("-"):
            break
        if arg == "--verbose":
            count += 1
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) <= {"v", "q"}:
            count += arg.count("v")
    return count


def run() -> None:
    """Console script: `main()` with TensorFlow's native info lines filtered out of stderr below -vv."""

    argv = sys.argv[1:]
    if _verbosity_requested(argv) >= 2:
        sys.exit(main(argv))
    code: int | None = None
    try:
        with filtered_native_stderr():
            code = main(argv)
    except KeyboardInterrupt:  # Ctrl-C outside main()'s own handling (setting up or tearing down the filter)
        if code is None:
            print("edgesep: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
