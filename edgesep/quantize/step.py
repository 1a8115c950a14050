"""The quantize step: ONNX (or an edgesep .tflite) + calibration data -> int8/float16/dynamic .tflite.

Light module: TensorFlow, onnx and the interpreter are imported when ``quantize`` runs.
Order of work: resolve the model's inputs and draw + validate the calibration
data (bad data fails here, before any conversion), lower the ONNX graph, convert
float32 (the size/accuracy reference), quantize, optionally analyse per layer and
fall back the worst layers to float, measure agreement on held-out samples, then
write the model atomically with its sidecar.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgesep.errors import CalibrationError, ConfigError, InputError
from edgesep.fileio import check_output, publish_model
from edgesep.quantize.analysis import LayerError
from edgesep.quantize.calibration import CalibrationData
from edgesep.quantize.keras_input import is_keras_input
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.result import QuantizeResult, Variant, quantized_sidecar
from edgesep.quantize.samples import calibration_info, calibration_progress, draw_data, split_data, tflite_samples
from edgesep.quantize.sensitivity import LayerSensitivity, greedy_fallback, task_metric
from edgesep.quantize.source import SourceModel, resolve

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
    """Quantize ``model_path`` (.onnx, or an edgesep .tflite whose sidecar names its ONNX) into ``output``.

    ``calibration`` is ``"digits"``, a folder of images, a .npy/.npz file or any
    CalibrationSource; int8 needs it, float16/dynamic use it (if given) only to
    measure agreement.  ``recipe.samples`` samples calibrate; up to ``holdout``
    further samples measure int8-vs-float agreement.  ``analyze`` computes the
    per-layer error; ``auto_fallback=N`` keeps in float the N layers whose int8 does the most damage to the
    output, judged by ``metric`` (``cosine``, ``top1`` or ``iou@T``) on the held-out samples, chosen greedily
    (``sensitivity.greedy_fallback``; the local per-layer error only pre-selects the candidates).

    ``recipe.equalize`` / ``recipe.bias_correction`` act on the PyTorch model behind the ONNX:
    ``model`` (an nn.Module or a ``module:factory`` reference, ``weights`` an optional
    checkpoint) is checked against the ONNX, prepared and re-exported, and that export is
    quantized; agreement is still measured against the given ONNX model's float32 TFLite.
    """
    started = time.perf_counter()
    check_output(output, force=force, inputs=[model_path])
    if is_keras_input(model_path):  # .keras / .h5 / SavedModel: its own float conversion, then the same int8 path
        from edgesep.quantize.keras_input import quantize_keras

        return quantize_keras(model_path, output, recipe=recipe, calibration=calibration, analyze=analyze,
                              auto_fallback=auto_fallback, holdout=holdout, progress=progress, force=force)
    if auto_fallback < 0:
        raise CalibrationError(f"auto_fallback must be >= 0, got {auto_fallback}")
    if auto_fallback and recipe.mode != "int8":
        raise CalibrationError(f"auto_fallback needs mode 'int8', not {recipe.mode!r}")
    score = task_metric(metric)  # an unknown metric fails before any work
    source = resolve(model_path, input_shape=input_shape)
    _check_torch_half(recipe, model, source)
    recipe, data = draw_data(source, recipe, calibration, holdout=holdout)
    calib, evaluation, held_out = split_data(data, recipe, source, holdout=holdout)

    import onnx

    from edgesep.convert.loading import simplify
    from edgesep.convert.lowering import has_integer_forms, lower
    from edgesep.quantize import engine
    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.agreement import agreement, run_tflite
    from edgesep.quantize.ranges import RangeConfig

    graph = simplify(onnx.load(str(source.onnx_path)))  # the same graph `edgesep convert` lowers
    shapes = {spec.name: spec.shape for spec in source.inputs}
    lowered = lower(graph, keep_nchw=source.keep_nchw, input_shapes=shapes)
    eval_samples = tflite_samples(lowered, evaluation)
    float_bytes = engine.float_model(lowered)
    reference = run_tflite(float_bytes, eval_samples)
    variants = [Variant("float32", (), len(float_bytes), agreement(reference, reference), reference.latency_ms)]
    layers: tuple[LayerError, ...] = ()
    sensitivity: tuple[LayerSensitivity, ...] = ()
    prepared = None

    if recipe.mode == "int8":
        calib_samples = tflite_samples(lowered, calib)
        # the int8 graph's float form: activations in the forms XNNPACK runs in int8 (convert/ops/activations.py)
        to_calibrate = float_bytes
        if recipe.needs_torch_model:
            to_calibrate, prepared = _prepared_float_model(model, source, calib, recipe, weights=weights)
        elif has_integer_forms(graph):
            to_calibrate = engine.float_model(lower(graph, keep_nchw=source.keep_nchw, input_shapes=shapes, integer=True))
        calibrated = engine.calibrate(to_calibrate, lambda: calibration_progress(calib_samples, enabled=progress))
        # our measured ranges replace the calibrator's min/max, also for minmax (see activation_ranges.py)
        calibrated, _ = apply_activation_ranges(calibrated, calib_samples, RangeConfig(method=recipe.activation_range))
        quant_bytes = engine.quantize_calibrated(calibrated, recipe)
        if analyze or auto_fallback:
            from edgesep.quantize.analysis import layer_errors, worst_layers

            layers = layer_errors(calibrated, calib_samples[:ANALYSIS_SAMPLES], recipe=recipe)
            if auto_fallback:
                run = run_tflite(quant_bytes, eval_samples)
                variants.append(
                    Variant("int8", recipe.keep_float, len(quant_bytes), agreement(reference, run), run.latency_ms)
                )
                base = recipe
                ops = {layer.name: layer.op for layer in layers}
                candidates = [(name, ops[name]) for name in worst_layers(layers, max(3 * auto_fallback, 8), exclude=base.keep_float)]
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
        name = f"int8+float({len(recipe.keep_float)})" if recipe.keep_float else "int8"
    elif recipe.mode == "float16":
        quant_bytes, name = engine.float16_model(lowered), "float16"
    else:
        quant_bytes, name = engine.dynamic_model(lowered), "dynamic"

    run = run_tflite(quant_bytes, eval_samples)
    fidelity = agreement(reference, run)
    variants.append(Variant(name, recipe.keep_float, len(quant_bytes), fidelity, run.latency_ms))
    path = Path(output)
    result = QuantizeResult(
        path=path,
        source=str(source.given),
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
        prepared=None if prepared is None else prepared.to_dict(),
        sensitivity=sensitivity,
        metric=metric,
        metric_value=score(reference, run),
    )
    publish_model(path, lambda tmp: tmp.write_bytes(quant_bytes), quantized_sidecar(result, source, quant_bytes, lowered),
                  force=force, inputs=[source.given, source.onnx_path])  # fmt: skip
    return result


def _check_torch_half(recipe: QuantRecipe, model: Any, source: SourceModel) -> None:
    """Equalization and bias correction need int8 and the PyTorch model (checked before any work)."""
    if not recipe.needs_torch_model:
        return
    if recipe.mode != "int8":
        raise ConfigError(f"equalize and bias_correction apply to mode 'int8' only, not {recipe.mode!r}")
    if model is None:
        raise InputError(
            "equalize and bias_correction act on the PyTorch model: pass model= (an nn.Module or "
            "'module:factory'; CLI: --torch-model), or turn them off for an ONNX-only input"
        )
    if len(source.inputs) != 1:
        raise InputError(f"equalize and bias_correction support single-input models; {source.given.name} has {len(source.inputs)}")


def _prepared_float_model(torch_model: Any, source: SourceModel, calib: CalibrationData, recipe: QuantRecipe, *, weights):
    """The float32 TFLite model of the equalized / bias-corrected PyTorch model (exported to a temp folder)."""
    import tempfile

    import onnx

    from edgesep.convert.lowering import lower
    from edgesep.quantize import engine
    from edgesep.quantize.prepare import export_prepared

    with tempfile.TemporaryDirectory(prefix="edgesep-prepare-") as tmp:
        onnx_path = Path(tmp) / "prepared.onnx"
        shape = source.inputs[0].shape
        prepared = export_prepared(
            torch_model, source.onnx_path, onnx_path, recipe=recipe, data=calib.arrays[0], input_shape=shape, weights=weights
        )
        graph = onnx.load(str(onnx_path))
        lowered = lower(graph, keep_nchw=source.keep_nchw, input_shapes={graph.graph.input[0].name: shape}, integer=True)
        return engine.float_model(lowered), prepared
