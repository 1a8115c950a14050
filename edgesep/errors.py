"""Typed errors shared by every edgesep step.

Every error a user can cause derives from :class:`EdgesepError`; the CLI prints
its message as one line and exits with ``exit_code`` (2 = bad input,
1 = a numeric threshold was missed).  Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class EdgesepError(Exception):
    """Base class: a user-facing error with a one-line message."""

    exit_code: int = 2


class InputError(EdgesepError):
    """A missing, unreadable or malformed input file or argument."""


class OutputExistsError(EdgesepError):
    """The output exists and ``force`` was not given."""


class OutputError(EdgesepError):
    """An output cannot be written: the operating system refused (read-only, full disk, a folder in the way...)."""


class ShapeError(EdgesepError):
    """An input or data shape does not match what the model expects."""


class UnsupportedOpError(EdgesepError):
    """An ONNX op (or attribute combination) the converter cannot lower."""

    def __init__(self, op_type: str, node_name: str, supported: list[str] | tuple[str, ...], detail: str = ""):
        self.op_type = op_type
        self.node_name = node_name
        self.supported = sorted(supported)
        extra = f" ({detail})" if detail else ""
        super().__init__(f"unsupported ONNX op {op_type!r} at node {node_name!r}{extra}; supported ops: {', '.join(self.supported)}")


class CalibrationError(EdgesepError):
    """Calibration data that cannot be used (shape, dtype, empty, non-finite)."""


class ConfigError(EdgesepError):
    """A pipeline config or recipe with an unknown key or a wrong type."""


class DeviceError(EdgesepError):
    """A device that cannot be reached or fails while running."""


class ToleranceError(EdgesepError):
    """A verification step measured an error above its tolerance."""

    exit_code = 1


class ThresholdError(EdgesepError):
    """A user-given quality gate (e.g. --fail-if-drop) was missed."""

    exit_code = 1


class IncompleteError(EdgesepError):
    """Part of a sweep was lost or failed; the finished part is kept and a re-run does only the rest."""

    exit_code = 1


class EdgesepWarning(UserWarning):
    """A user-facing warning: the CLI prints it as one ``edgesep: warning:`` line."""
