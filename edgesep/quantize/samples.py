"""Calibration samples for the quantize step (ONNX and Keras input alike): draw, split, convert, iterate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edgesep.data.synthetic import random_inputs
from edgesep.quantize.calibration import CalibrationData, ImageFolderSource, draw, open_source
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.source import SourceModel


def draw_data(model: SourceModel, recipe: QuantRecipe, calibration: Any, *, holdout: int):
    """Open and validate the calibration data (before any conversion); resolve the preprocessing spec."""
    if calibration is None:  # int8 without data failed before (step.quantize)
        return recipe, None
    source = open_source(calibration, preprocessing=recipe.preprocessing, input_shape=model.inputs[0].shape)
    if isinstance(source, ImageFolderSource) and recipe.preprocessing is None:
        recipe = replace(recipe, preprocessing=source.spec)
    count = recipe.samples + max(0, holdout) if recipe.needs_calibration else max(1, holdout)
    required = recipe.samples if recipe.needs_calibration else 1
    data = draw(source, model.inputs, count=count, seed=recipe.seed, required=required)
    return recipe, data


def split_data(data: CalibrationData | None, recipe: QuantRecipe, model: SourceModel, *, holdout: int):
    """(calibration part, evaluation part, held_out): evaluation reuses calibration data only if there is no more."""
    if data is None:
        count = max(1, min(holdout, 32))
        arrays = tuple(random_inputs((count, *spec.shape[1:]), seed=recipe.seed + i) for i, spec in enumerate(model.inputs))
        return None, CalibrationData(arrays=arrays, requested=count, skipped=0, description={}), False
    if not recipe.needs_calibration:
        return None, data, False
    total = len(data)
    if total > recipe.samples and holdout > 0:
        return data.take(0, recipe.samples), data.take(recipe.samples, total), True
    return data, data, False


def calibration_info(data, calib, evaluation, held_out: bool) -> dict[str, Any] | None:
    """The sidecar's "calibration": the source, samples used to calibrate, samples drawn and evaluated."""
    if data is None:
        return None
    info = {**data.description, "drawn": len(data), "samples": len(calib) if calib is not None else 0}
    info["eval_samples"] = len(evaluation)
    info["held_out"] = held_out
    return info


def tflite_samples(source, data: CalibrationData) -> list[list[np.ndarray]]:
    """NCHW batches -> a list of batch-1 input lists in the layout of the float source's TFLite model."""
    converted = [source.to_tflite_input(i, array) for i, array in enumerate(data.arrays)]
    return [[array[n : n + 1] for array in converted] for n in range(len(data))]


def calibration_progress(samples: Sequence[Any], *, enabled: bool):
    from tqdm import tqdm

    return iter(tqdm(samples, desc="calibrating", unit="sample", disable=not enabled, leave=False))
