"""Read user .npy / .npz files safely: never unpickle, load eagerly, and turn every way a file can be wrong
(pickled object arrays, a truncated zip, not numpy at all) into one InputError naming the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgesep.errors import InputError


def read_npz(path: str | Path, *, what: str = "array file") -> dict[str, np.ndarray]:
    """Every array of a .npz, loaded now (numpy loads lazily, so a bad member would fail later, elsewhere)."""
    source = Path(path)
    try:
        with np.load(source, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name]) for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read {what} {source}: {_reason(error)}") from None


def read_npy(path: str | Path, *, what: str = "array file") -> np.ndarray:
    source = Path(path)
    try:
        return np.asarray(np.load(source, allow_pickle=False))
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"cannot read {what} {source}: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "allow_pickle" in text:
        return "it holds pickled Python objects, which edgesep never loads (save plain numeric arrays)"
    return text
