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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.errors import CalibrationError, ConfigError, InputError
from edgesep.fileio import check_output, publish_model
from edgesep.numerics import Fidelity
from edgesep.quantize.analysis import LayerError
from edgesep.quantize.calibration import CalibrationData, ImageFolderSource, draw, open_source
from edgesep.quantize.keras_input import is_keras_input
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.sensitivity import LayerSensitivity, greedy_fallback, task_metric
from edgesep.quantize.source import SourceModel, resolve
from edgesep.sidecar import Sidecar, TensorInfo, TensorQuantization

DEFAULT_HOLDOUT = 100
ANALYSIS_SAMPLES = 32


@dataclass(frozen=True)
class Variant:
    """One model of the size/accuracy/latency trade-off (agreement is vs the float32 TFLite model)."""

    name: str
    keep_float: tuple[str, ...]
    size_bytes: int
    fidelity: Fidelity
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "keep_float": list(self.keep_float), "fidelity": self.fidelity.to_dict()}


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    source: str
    recipe: QuantRecipe  # as applied: preprocessing resolved, auto-fallback layers included in keep_float
    float_size_bytes: int
    size_bytes: int
    fidelity: Fidelity  # quantized vs float32 TFLite on the evaluation samples
    eval_samples: int
    held_out: bool  # evaluation samples were not used for calibration
    calibration: dict[str, Any] | None
    kernel_dtypes: dict[str, str]
    layers: tuple[LayerError, ...]  # per-layer error, worst first (with analyze/auto_fallback)
    variants: tuple[Variant, ...]  # float32, the written model, and the full-int8 model it was chosen over
    seconds: float
    prepared: dict[str, Any] | None = None  # what equalization / bias correction did (PreparedModel.to_dict())
    sensitivity: tuple[LayerSensitivity, ...] = ()  # auto-fallback candidates ranked by the output metric
    metric: str = "cosine"

    @property
    def size_ratio(self) -> float:
        return self.size_bytes / self.float_size_bytes if self.float_size_bytes else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": self.source,
            "recipe": self.recipe.to_dict(),
            "float_size_bytes": self.float_size_bytes,
            "size_bytes": self.size_bytes,
            "size_ratio": self.size_ratio,
            "fidelity": self.fidelity.to_dict(),
            "eval_samples": self.eval_samples,
            "held_out": self.held_out,
            "calibration": self.calibration,
            "kernel_dtypes": dict(self.kernel_dtypes),
            "layers": [layer.to_dict() for layer in self.layers],
            "variants": [variant.to_dict() for variant in self.variants],
            "seconds": self.seconds,
            "prepared": self.prepared,
            "metric": self.metric,
            "sensitivity": [s.to_dict() for s in self.sensitivity],
        }


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
    recipe, data = _draw_data(source, recipe, calibration, holdout=holdout)
    calib, evaluation, held_out = _split(data, recipe, source, holdout=holdout)

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
    eval_samples = _tflite_samples(lowered, evaluation)
    float_bytes = engine.float_model(lowered)
    reference = run_tflite(float_bytes, eval_samples)
    variants = [Variant("float32", (), len(float_bytes), agreement(reference, reference), reference.latency_ms)]
    layers: tuple[LayerError, ...] = ()
    sensitivity: tuple[LayerSensitivity, ...] = ()
    prepared = None

    if recipe.mode == "int8":
        calib_samples = _tflite_samples(lowered, calib)
        # the int8 graph's float form: activations in the forms XNNPACK runs in int8 (convert/ops/activations.py)
        to_calibrate = float_bytes
        if recipe.needs_torch_model:
            to_calibrate, prepared = _prepared_float_model(model, source, calib, recipe, weights=weights)
        elif has_integer_forms(graph):
            to_calibrate = engine.float_model(lower(graph, keep_nchw=source.keep_nchw, input_shapes=shapes, integer=True))
        calibrated = engine.calibrate(to_calibrate, lambda: _progress(calib_samples, enabled=progress))
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
        calibration=_calibration_info(data, calib, evaluation, held_out),
        kernel_dtypes=engine.kernel_dtypes(quant_bytes),
        layers=layers,
        variants=tuple(variants),
        seconds=time.perf_counter() - started,
        prepared=None if prepared is None else prepared.to_dict(),
        sensitivity=sensitivity,
        metric=metric,
    )
    publish_model(path, lambda tmp: tmp.write_bytes(quant_bytes), _sidecar(result, source, quant_bytes, lowered),
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


def _draw_data(model: SourceModel, recipe: QuantRecipe, calibration: Any, *, holdout: int):
    """Open and validate the calibration data (before any conversion); resolve the preprocessing spec."""
    if calibration is None:
        if recipe.needs_calibration:
            raise CalibrationError("int8 quantization needs calibration data: a folder of images, a .npy/.npz or 'digits'")
        return recipe, None
    source = open_source(calibration, preprocessing=recipe.preprocessing, input_shape=model.inputs[0].shape)
    if isinstance(source, ImageFolderSource) and recipe.preprocessing is None:
        recipe = replace(recipe, preprocessing=source.spec)
    count = recipe.samples + max(0, holdout) if recipe.needs_calibration else max(1, holdout)
    required = recipe.samples if recipe.needs_calibration else 1
    data = draw(source, model.inputs, count=count, seed=recipe.seed, required=required)
    return recipe, data


def _split(data: CalibrationData | None, recipe: QuantRecipe, model: SourceModel, *, holdout: int):
    """(calibration part, evaluation part, held_out): evaluation reuses calibration data only if there is no more."""
    if data is None:
        from edgesep.data.synthetic import random_inputs

        count = max(1, min(holdout, 32))
        arrays = tuple(random_inputs((count, *spec.shape[1:]), seed=recipe.seed + i) for i, spec in enumerate(model.inputs))
        return None, CalibrationData(arrays=arrays, requested=count, skipped=0, description={}), False
    if not recipe.needs_calibration:
        return None, data, False
    total = len(data)
    if total > recipe.samples and holdout > 0:
        return data.take(0, recipe.samples), data.take(recipe.samples, total), True
    return data, data, False


def _calibration_info(data, calib, evaluation, held_out: bool) -> dict[str, Any] | None:
    """The sidecar's "calibration": the source, samples used to calibrate, samples drawn and evaluated."""
    if data is None:
        return None
    info = {**data.description, "drawn": len(data), "samples": len(calib) if calib is not None else 0}
    info["eval_samples"] = len(evaluation)
    info["held_out"] = held_out
    return info


def _tflite_samples(lowered, data: CalibrationData) -> list[list[np.ndarray]]:
    """NCHW batches -> a list of batch-1 input lists in the TFLite model's layout."""
    converted = [lowered.to_tflite_input(i, array) for i, array in enumerate(data.arrays)]
    return [[array[n : n + 1] for array in converted] for n in range(len(data))]


def _progress(samples: Sequence[Any], *, enabled: bool):
    from tqdm import tqdm

    return iter(tqdm(samples, desc="calibrating", unit="sample", disable=not enabled, leave=False))


def _sidecar(result: QuantizeResult, model: SourceModel, quant_bytes: bytes, lowered) -> Sidecar:
    from edgesep.quantize.engine import interpreter

    runner = interpreter(quant_bytes)

    def describe(detail: dict, *, layout: str | None) -> TensorInfo:
        shape = tuple(int(d) for d in detail["shape"])
        scale, zero_point = detail["quantization"]
        return TensorInfo(
            shape,
            np.dtype(detail["dtype"]).name,
            name=detail["name"],
            layout=layout if len(shape) == 4 else None,
            quantization=TensorQuantization(float(scale), int(zero_point)) if scale else None,
        )

    return Sidecar(
        format="tflite",
        source=str(model.onnx_path),
        inputs=tuple(describe(d, layout=lowered.input_layout) for d in runner.get_input_details()),
        outputs=tuple(describe(d, layout=None) for d in runner.get_output_details()),
        onnx_input_layout="NCHW",
        verification={
            "reference": "float32 tflite",
            "cosine": result.fidelity.cosine,
            "top1_agreement": result.fidelity.top1_agreement,
            "max_abs": result.fidelity.max_abs,
            "samples": result.eval_samples,
            "held_out": result.held_out,
        },
        recipe=result.recipe.to_dict(),
        preprocessing=None if result.recipe.preprocessing is None else result.recipe.preprocessing.to_dict(),
        calibration=result.calibration,
        quantization={
            "float_size_bytes": result.float_size_bytes,
            "size_bytes": result.size_bytes,
            "kernel_dtypes": result.kernel_dtypes,
            "worst_layers": [layer.to_dict() for layer in result.layers[:5]],
            "sensitivity": {"metric": result.metric, "layers": [s.to_dict() for s in result.sensitivity]},
            "prepared": result.prepared,
        },
    )
