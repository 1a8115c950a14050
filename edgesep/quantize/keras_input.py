"""Keras models (.keras / .h5 / SavedModel folder) as quantize input.

The model goes through ``edgesep.convert.keras``'s float path (``TFLiteConverter.from_keras_model``);
that float TFLite model is then calibrated and quantized exactly like an ONNX model's float conversion.
Calibration data stays NCHW, as everywhere in edgesep; it is transposed to the model's NHWC here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgesep.errors import InputError
from edgesep.models.keras_loading import KERAS_FILE_SUFFIXES
from edgesep.quantize.calibration import InputSpec
from edgesep.quantize.source import SourceModel
from edgesep.runners.interpreter import open_interpreter


@dataclass(frozen=True)
class KerasFloatModel:
    """What the quantize step needs of a lowered model, for a Keras model's float32 TFLite conversion."""

    float_bytes: bytes = field(repr=False)
    input_layout: str = "NHWC"

    def to_tflite_input(self, index: int, array: np.ndarray) -> np.ndarray:
        """An NCHW calibration batch -> the Keras model's NHWC input (other ranks unchanged)."""
        if array.ndim == 4:
            return np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))
        return array


def is_keras_input(path: str | Path) -> bool:
    """A .keras / .h5 file or a SavedModel folder (what ``edgesep convert`` takes as Keras input)."""
    path = Path(path)
    if path.is_dir():
        return (path / "saved_model.pb").is_file()
    return path.suffix.lower() in KERAS_FILE_SUFFIXES


def keras_source(path: str | Path, *, mode: str) -> tuple[SourceModel, KerasFloatModel]:
    """The Keras model's NCHW input specs and its float32 TFLite model (InputError if it is not a model)."""
    from edgesep.convert.keras import keras_float_tflite

    if mode != "int8":
        raise InputError(f"Keras models are quantized with mode int8 only, not {mode!r} (convert them with edgesep convert)")
    given = Path(path)
    model_bytes = keras_float_tflite(given)
    interpreter = open_interpreter(model_bytes, allocate=False)
    specs = []
    for detail in interpreter.get_input_details():
        shape = tuple(int(d) for d in detail["shape"])
        if len(shape) == 4:
            shape = (1, shape[3], shape[1], shape[2])  # NHWC model input -> NCHW data spec
        specs.append(InputSpec(detail["name"], shape))
    source = SourceModel(onnx_path=given, keep_nchw=False, inputs=tuple(specs), given=given)
    return source, KerasFloatModel(float_bytes=model_bytes)


def quantize_keras(
    model_path: str | Path,
    output: str | Path,
    *,
    recipe,
    calibration,
    analyze: bool = False,
    auto_fallback: int = 0,
    holdout: int,
    progress: bool = False,
    force: bool = False,
):
    """``edgesep.quantize.quantize`` for a Keras model: int8, calibrated on its verified float32 TFLite model.

    Same recipe, calibration sampling, hold-out agreement, sidecar and atomic write as the ONNX path;
    equalization / bias correction (they act on a PyTorch model), --analyze and --auto-fallback are not
    available for Keras input.
    """
    import time

    from edgesep.errors import CalibrationError
    from edgesep.fileio import publish_model
    from edgesep.quantize import engine
    from edgesep.quantize.agreement import agreement, run_tflite
    from edgesep.quantize.result import QuantizeResult, Variant, quantized_sidecar
    from edgesep.quantize.samples import calibration_info, calibration_progress, draw_data, split_data, tflite_samples

    started = time.perf_counter()
    if analyze or auto_fallback or getattr(recipe, "needs_torch_model", False):
        raise InputError("Keras input: --analyze, --auto-fallback, equalize and bias correction are not available")
    if calibration is None:
        raise CalibrationError("int8 quantization needs calibration data: a folder of images, a .npy/.npz or 'digits'")
    source, lowered = keras_source(model_path, mode=recipe.mode)
    recipe, data = draw_data(source, recipe, calibration, holdout=holdout)
    calib, evaluation, held_out = split_data(data, recipe, source, holdout=holdout)

    float_bytes = lowered.float_bytes
    eval_samples = tflite_samples(lowered, evaluation)
    calib_samples = tflite_samples(lowered, calib)
    reference = run_tflite(float_bytes, eval_samples)
    calibrated = engine.calibrate(float_bytes, lambda: calibration_progress(calib_samples, enabled=progress))
    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.ranges import RangeConfig

    calibrated, _ = apply_activation_ranges(calibrated, calib_samples, RangeConfig(method=recipe.activation_range))
    quant_bytes = engine.quantize_calibrated(calibrated, recipe)
    run = run_tflite(quant_bytes, eval_samples)
    fidelity = agreement(reference, run)
    name = f"int8+float({len(recipe.keep_float)})" if recipe.keep_float else "int8"
    variants = (
        Variant("float32", (), len(float_bytes), agreement(reference, reference), reference.latency_ms),
        Variant(name, recipe.keep_float, len(quant_bytes), fidelity, run.latency_ms),
    )
    path = Path(output)
    result = QuantizeResult(
        path=path, source=str(source.given), recipe=recipe, float_size_bytes=len(float_bytes),
        size_bytes=len(quant_bytes), fidelity=fidelity, eval_samples=len(eval_samples), held_out=held_out,
        calibration=calibration_info(data, calib, evaluation, held_out), kernel_dtypes=engine.kernel_dtypes(quant_bytes),
        layers=(), variants=variants, seconds=time.perf_counter() - started,
    )  # fmt: skip
    sidecar = replace(quantized_sidecar(result, source, quant_bytes, lowered), source_format="keras", onnx_input_layout=None)
    publish_model(path, lambda tmp: tmp.write_bytes(quant_bytes), sidecar, force=force, inputs=[source.given])
    return result
