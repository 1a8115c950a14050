"""Load a Keras model file (.keras / .h5): the models layer's entry for Keras input, used by accounting,
conversion and quantization alike."""

from __future__ import annotations

from pathlib import Path

from edgesep.errors import InputError
from edgesep.fileio import check_input

KERAS_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_keras(path: str | Path):
    """``keras.Model`` from a .keras/.h5 file (not compiled); InputError when it is not one."""
    import keras

    source = Path(path)
    check_input(source, what="Keras model")
    if source.suffix.lower() not in KERAS_FILE_SUFFIXES:
        raise InputError(f"{source} is not a .keras or .h5 file")
    if not _has_keras_signature(source):
        kind = "zip archive" if source.suffix.lower() == ".keras" else "HDF5 file"
        raise InputError(f"{source} is not a Keras model (a {source.suffix} model is a {kind})")
    try:
        model = keras.models.load_model(source, compile=False)
    except Exception as error:  # zip/HDF5/JSON errors of every kind
        raise InputError(f"{source} is not a readable Keras model: {first_line(error)}") from error
    if not isinstance(model, keras.Model):
        raise InputError(f"{source} holds a {type(model).__name__}, not a Keras model")
    return model


def _has_keras_signature(source: Path) -> bool:
    import zipfile

    if source.suffix.lower() == ".keras":
        return zipfile.is_zipfile(source)
    with open(source, "rb") as handle:
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]
