"""Atomic output files: write to a temp file beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgesep.errors import InputError, OutputExistsError


def check_output(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Refuse to overwrite an existing output unless ``force``; return the path."""
    target = Path(path)
    if target.exists() and not force:
        raise OutputExistsError(f"{target} exists; pass --force (force=True) to overwrite it")
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    return target


def check_input(path: str | os.PathLike, *, what: str = "input file") -> Path:
    source = Path(path)
    if not source.exists():
        raise InputError(f"{what} not found: {source}")
    if not source.is_file():
        raise InputError(f"{what} is not a file: {source}")
    return source


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto ``path`` on success.

    On any exception the temp file is removed and the target is untouched.
    """
    target = check_output(path, force=force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the output gets the usual permissions
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_bytes(path: str | os.PathLike, data: bytes, *, force: bool = False) -> Path:
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, force: bool = False) -> Path:
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any, *, force: bool = False) -> Path:
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n", force=force)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.tflite`` -> ``model.tflite.json``: the metadata edgesep keeps beside a model."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")
