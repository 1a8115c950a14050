"""Atomic output files: write to a temp file beside the target, then rename.

Every operating-system error on the way (read-only filesystem, full disk, a folder where the file should go,
no permission) becomes one :class:`OutputError` naming the path and the errno's meaning. A model and its
sidecar are published together (:func:`publish_model`): both temp files are written first, then the sidecar and
the model are renamed, so a reader never finds an edgesep model without its sidecar.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from edgesep.errors import InputError, OutputError, OutputExistsError

# errors that say "this output cannot be written here" (not a bug): mapped to one OutputError line
_OUTPUT_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EISDIR,
                            errno.ENOTDIR, errno.EEXIST, errno.EFBIG, errno.EIO, errno.ENAMETOOLONG, errno.ENOENT})  # fmt: skip


def output_error(target: Path, error: OSError) -> OutputError:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return OutputError(f"cannot write {target}: {reason}")


def check_output(path: str | os.PathLike, *, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse to overwrite an existing output unless ``force``, and refuse, even with ``force``, an output
    that is a folder or resolves (after symlinks) to one of the command's ``inputs``; create the parent folder."""
    target = Path(path)
    for source in inputs:
        if Path(source).exists() and target.resolve() == Path(source).resolve():
            raise InputError(f"the output {target} is the input {source}; write the result to another file")
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder")
    if target.exists() and not force:
        raise OutputExistsError(f"{target} exists; pass --force (force=True) to overwrite it")
    if target.parent and not target.parent.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise output_error(target, error) from None
    return target


def check_output_folder(path: str | os.PathLike, *, create: bool = True) -> Path:
    """An output folder: refuse a file in its place (one OutputError line), create it (and its parents) when
    ``create``; operating-system errors become OutputError naming the folder."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: it is a file, not a folder")
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise output_error(folder, error) from None
    return folder


def check_input(path: str | os.PathLike, *, what: str = "input file") -> Path:
    source = Path(path)
    if not source.exists():
        raise InputError(f"{what} not found: {source}")
    if source.is_dir():
        raise InputError(f"{what} {source} is a folder, not a file")
    if not source.is_file():
        raise InputError(f"{what} {source} is not a regular file")
    return source


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto ``path`` on success.

    On any exception the temp file is removed and the target is untouched.
    """
    target = check_output(path, force=force)
    tmp = _temp_beside(target)
    try:
        try:
            yield tmp
        except OSError as error:
            if error.errno in _OUTPUT_ERRNOS and error.filename in (None, str(tmp)):
                raise output_error(target, error) from None
            raise
        _finish(tmp, target)
    finally:
        _discard(tmp)


def publish_model(
    path: str | os.PathLike,
    write_model: Callable[[Path], object],
    sidecar: Any,
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write a model (``write_model(temp_path)``) and its JSON sidecar together: both temp files first, then
    the sidecar is renamed into place, then the model; on any failure neither new file is left behind."""
    target = check_output(path, force=force, inputs=inputs)
    side = sidecar_path(target)
    model_tmp = _temp_beside(target)
    side_tmp: Path | None = None
    try:
        try:
            write_model(model_tmp)
            side_tmp = _temp_beside(side)
            side_tmp.write_text(_json_text(sidecar), encoding="utf-8")
            _finish(side_tmp, side)
            side_tmp = None
            try:
                _finish(model_tmp, target)
            except BaseException:
                _discard(side)  # the model did not land: its new sidecar must not describe the old file
                raise
        except OSError as error:
            if error.errno in _OUTPUT_ERRNOS:
                raise output_error(target, error) from None
            raise
    finally:
        _discard(model_tmp)
        if side_tmp is not None:
            _discard(side_tmp)
    return target


# a temp file is ".<target name>.<writer's pid>.<mkstemp's 8 random characters>.tmp"
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temp files that a killed edgesep process left under ``folder`` (SIGKILL, power loss: no
    ``finally`` ran). Only files named like ours whose writer (the pid in the name) is no longer running are
    removed, so a run writing into the same folder at the same time keeps its temp files. Returns the removed."""
    removed = []
    for path in sorted(Path(folder).rglob(".*.tmp")):
        match = _TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or _running(int(match["pid"])):
            continue
        _discard(path)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def _temp_beside(target: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise output_error(target, error) from None
    os.close(fd)
    return Path(name)


def _finish(tmp: Path, target: Path) -> None:
    if tmp.is_file():
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the output gets the usual permissions
    try:
        os.replace(tmp, target)
    except OSError as error:
        raise output_error(target, error) from None


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.exists():
            path.unlink()


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
    return write_text(path, _json_text(payload), force=force)


def _json_text(payload: Any) -> str:
    if hasattr(payload, "to_dict"):  # a typed record such as edgesep.sidecar.Sidecar
        payload = payload.to_dict()
    return json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n"


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
