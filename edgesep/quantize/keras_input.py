"""Keras models (.keras / .h5 / SavedModel folder) as a quantize float source.

The model goes through ``edgesep.convert.keras``'s float path (``TFLiteConverter.from_keras_model``,
verified against Keras); that float TFLite model then takes the one int8 path of step.py, exactly
like an ONNX model's.  Calibration data stays NCHW, as everywhere in edgesep; it is transposed to
the model's NHWC here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesep.convert.keras import keras_float_tflite
from edgesep.errors import InputError
from edgesep.models.keras_loading import KERAS_FILE_SUFFIXES
from edgesep.quantize.calibration import CalibrationData, InputSpec
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.source import SourceModel
from edgesep.runners.interpreter import open_interpreter


@dataclass(frozen=True)
class KerasFloatSource:
    """A Keras model's verified float32 TFLite conversion, as a ``float_source.FloatSource`` (int8 only)."""

    model: SourceModel
    float_bytes: bytes = field(repr=False)
    input_layout: str = "NHWC"
    source_format: str | None = "keras"

    def to_tflite_input(self, index: int, array: np.ndarray) -> np.ndarray:
        """An NCHW calibration batch -> the Keras model's NHWC input (other ranks unchanged)."""
        if array.ndim == 4:
            return np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))
        return array

    def float_model(self) -> bytes:
        return self.float_bytes

    def calibration_model(self, recipe: QuantRecipe, calib: CalibrationData, *, progress: bool = False) -> tuple[bytes, None]:
        return self.float_bytes, None

    def converted(self, mode: str) -> bytes:
        raise InputError(f"Keras models are quantized with mode int8 only, not {mode!r} (convert them with edgesep convert)")


def is_keras_input(path: str | Path) -> bool:
    """A .keras / .h5 file or a SavedModel folder (what ``edgesep convert`` takes as Keras input)."""
    path = Path(path)
    if path.is_dir():
        return (path / "saved_model.pb").is_file()
    return path.suffix.lower() in KERAS_FILE_SUFFIXES


def keras_float_source(path: str | Path) -> KerasFloatSource:
    """The Keras model's float32 TFLite model and NCHW input specs (InputError if it is not a model)."""

    given = Path(path)
    model_bytes = keras_float_tflite(given)
    interpreter = open_interpreter(model_bytes, allocate=False)
    specs = []
    for detail in interpreter.get_input_details():
        shape = tuple(int(d) for d in detail["shape"])
        if len(shape) == 4:
            shape = (1, shape[3], shape[1], shape[2])  # NHWC model input -> NCHW data spec
        specs.append(InputSpec(detail["name"], shape))
    return KerasFloatSource(SourceModel(onnx_path=given, keep_nchw=False, inputs=tuple(specs), given=given), model_bytes)
