"""The quantize step: a float source + calibration data -> int8/float16/dynamic .tflite.

Light module: TensorFlow, onnx and the interpreter are imported when ``quantize`` runs.
Order of work: open the float source (float_source.py: ONNX, an edgesep .tflite's ONNX, or Keras)
and draw + validate the calibration data against its inputs (for ONNX before any conversion), take
its float32 TFLite model (the size/accuracy reference), quantize, optionally analyse per layer and
fall back the worst layers to float, measure agreement on held-out samples, then write the model
atomically with its sidecar.  One path for every source.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgesep.errors import CalibrationError
from edgesep.fileio import check_output, publish_model
from edgesep.quantize import engine
from edgesep.quantize.activation_ranges import apply_activation_ranges
from edgesep.quantize.adaround import adaround_int8
from edgesep.quantize.agreement import agreement
from edgesep.quantize.analysis import LayerError, layer_errors, worst_layers
from edgesep.quantize.float_source import open_float_source
from edgesep.quantize.int8_bias import correct_int8_bias
from edgesep.quantize.ranges import RangeConfig
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.result import QuantizeResult, Variant, quantized_sidecar
from edgesep.quantize.samples import calibration_info, calibration_progress, draw_data, split_data, tflite_samples
from edgesep.quantize.sensitivity import LayerSensitivity, greedy_fallback, task_metric
from edgesep.runners.tflite import run_tflite

__all__ = ["DEFAULT_HOLDOUT", "QuantizeResult", "Variant", "quantize"]

DEFAULT_HOLDOUT = 100
ANALYSIS_SAMPLES = 32


def quantize(
    model_path: str | Path,
    output: str | Path,
    *,
    recipe: QuantRecipe = QuantRecipe(),
    model: Any = None,
    weights: str | Path | None = None,
    calibration: Any = None,
    input_shape: tuple[int, ...] | None = None,
    analyze: bool = False,
    auto_fallback: int = 0,
    metric: str = "cosine",
    holdout: int = DEFAULT_HOLDOUT,
    progress: bool = False,
    force: bool = False,
) -> QuantizeResult:
    """Quantize ``model_path`` (.onnx, an edgesep .tflite whose sidecar names its ONNX, or a Keras .keras/.h5/SavedModel,
    int8 only) into ``output``.

    ``calibration`` is ``"digits"``, a folder of images, a .npy/.npz file or any
    CalibrationSource; int8 needs it, float16/dynamic use it (if given) only to
    measure agreement.  ``recipe.samples`` samples calibrate; up to ``holdout``
    further samples measure int8-vs-float agreement.  ``analyze`` computes the
    per-layer error; ``auto_fallback=N`` keeps in float up to N layers whose int8 does the most damage to the
    output, judged by ``metric`` (``sensitivity.task_metric``) on the held-out samples, chosen greedily
    (``sensitivity.greedy_fallback``: it stops early when no layer gains; the local per-layer error only
    pre-selects the candidates, among the layers the int8 model does not already compute in float).

    ``recipe.equalize`` / ``recipe.bias_correction`` / ``recipe.qat_epochs`` act on the PyTorch model behind the ONNX:
    ``model`` (an nn.Module or a ``module:factory`` reference, ``weights`` an optional
    checkpoint) is checked against the ONNX, prepared and re-exported, and that export is
    quantized; agreement is still measured against the given ONNX model's float32 TFLite.
    ``recipe.weight_rounding="adaround"`` learns the rounding of the int8 weights on the calibration samples
    (``adaround.py``; any source; before the bias correction).
    Without ``model``, ``bias_correction="empirical"`` corrects the int8 model's int32 biases against its float
    model on the calibration samples (``int8_bias.py``; any source, ONNX or Keras; with ``auto_fallback`` the
    layers are chosen before the correction).
    """
    started = time.perf_counter()
    check_output(output, force=force, inputs=[model_path])
    if auto_fallback < 0:
        raise CalibrationError(f"auto_fallback must be >= 0, got {auto_fallback}")
    if auto_fallback and recipe.mode != "int8":
        raise CalibrationError(f"auto_fallback needs mode 'int8', not {recipe.mode!r}")
    if calibration is None and recipe.needs_calibration:
        raise CalibrationError("int8 quantization needs calibration data: a folder of images, a .npy/.npz or 'digits'")
    score = task_metric(metric)  # an unknown metric fails before any work
    source = open_float_source(model_path, recipe, torch_model=model, weights=weights, input_shape=input_shape)
    recipe, data = draw_data(source.model, recipe, calibration, holdout=holdout)
    calib, evaluation, held_out = split_data(data, recipe, source.model, holdout=holdout)

    eval_samples = tflite_samples(source, evaluation)
    float_bytes = source.float_model()
    reference = run_tflite(float_bytes, eval_samples)
    variants = [Variant("float32", (), len(float_bytes), agreement(reference, reference), reference.latency_ms)]
    layers: tuple[LayerError, ...] = ()
    sensitivity: tuple[LayerSensitivity, ...] = ()
    prepared = None
    int8_info: dict[str, Any] = {}  # what was done to the int8 model itself (weight rounding, bias correction)

    if recipe.mode == "int8":
        assert calib is not None, "int8 has calibration data (checked above)"
        calib_samples = tflite_samples(source, calib)
        to_calibrate, prepared = source.calibration_model(recipe, calib, progress=progress)
        calibrated = engine.calibrate(to_calibrate, lambda: calibration_progress(calib_samples, enabled=progress))
        # our measured ranges replace the calibrator's min/max, also for minmax (see activation_ranges.py)
        calibrated, _ = apply_activation_ranges(calibrated, calib_samples, RangeConfig(method=recipe.activation_range))
        if any(recipe.float_ends):  # the stem / head kept float, by name from here on (the sidecar lists them)
            recipe = recipe.with_keep_float(recipe.keep_float + engine.end_layers(calibrated, recipe.float_ends))
        quant_bytes = engine.quantize_calibrated(calibrated, recipe)
        if analyze or auto_fallback:
            layers = layer_errors(calibrated, calib_samples[:ANALYSIS_SAMPLES], recipe=recipe)
            if auto_fallback:
                run = run_tflite(quant_bytes, eval_samples)
                variants.append(Variant("int8", recipe.keep_float, len(quant_bytes), agreement(reference, run), run.latency_ms))
                base = recipe
                ops = {layer.name: layer.op for layer in layers}
                already_float = (*base.keep_float, *engine.float_layers(quant_bytes))  # keeping these again changes nothing
                candidates = [(name, ops[name]) for name in worst_layers(layers, max(3 * auto_fallback, 8), exclude=already_float)]
                extra, sensitivity = greedy_fallback(
                    lambda names: engine.quantize_calibrated(calibrated, base.with_keep_float(base.keep_float + names)),
                    lambda model_bytes: run_tflite(model_bytes, eval_samples),
                    reference,
                    candidates,
                    metric=score,
                    count=auto_fallback,
                )
                recipe = recipe.with_keep_float(recipe.keep_float + extra)
                quant_bytes = engine.quantize_calibrated(calibrated, recipe)
        if recipe.weight_rounding == "adaround":  # learned rounding of the int8 weights (any source), before bias correction
            quant_bytes, rounding = adaround_int8(quant_bytes, calibrated, calib_samples, seed=recipe.seed, progress=progress)
            int8_info["weight_rounding"] = rounding.to_dict()
        if recipe.bias_correction == "empirical" and not recipe.prepares_torch_model(model):  # correct the int8 model
            quant_bytes, bias_report = correct_int8_bias(quant_bytes, calibrated, calib_samples)
            int8_info["bias_correction"] = bias_report.to_dict()
        name = f"int8+float({len(recipe.keep_float)})" if recipe.keep_float else "int8"
    else:
        quant_bytes, name = source.converted(recipe.mode), recipe.mode

    run = run_tflite(quant_bytes, eval_samples)
    fidelity = agreement(reference, run)
    variants.append(Variant(name, recipe.keep_float, len(quant_bytes), fidelity, run.latency_ms))
    path = Path(output)
    result = QuantizeResult(
        path=path,
        source=str(source.model.given),
        recipe=recipe,
        float_size_bytes=len(float_bytes),
        size_bytes=len(quant_bytes),
        fidelity=fidelity,
        eval_samples=len(eval_samples),
        held_out=held_out,
        calibration=calibration_info(data, calib, evaluation, held_out),
        kernel_dtypes=engine.kernel_dtypes(quant_bytes),
        layers=layers,
        variants=tuple(variants),
        seconds=time.perf_counter() - started,
        prepared=({**prepared.to_dict(), **int8_info} if prepared is not None else int8_info) or None,
        sensitivity=sensitivity,
        metric=metric,
        metric_value=score(reference, run),
    )
    sidecar = quantized_sidecar(result, source, quant_bytes)
    publish_model(path, lambda tmp: tmp.write_bytes(quant_bytes), sidecar, force=force, inputs=[source.model.given, source.model.onnx_path])
    return result
