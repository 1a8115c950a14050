"""The TFLite converter calls behind every mode (heavy: imports TensorFlow; step.py imports it lazily).

int8 goes in two stages so that calibration runs once: ``calibrate`` records, in the
float TFLite model, the activation ranges measured on the representative data, and
``quantize_calibrated`` (TensorFlow's MLIR quantizer) turns that into the final model
(per-channel or per-tensor weights, I/O types, layers kept in float).  The second
stage takes milliseconds, which is what makes ``--auto-fallback`` cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from edgesep.convert.tflite import make_converter as convert_make_converter
from edgesep.convert.tflite import to_tflite_bytes
from edgesep.convert.tflite_inspect import delegation
from edgesep.errors import ConfigError
from edgesep.quantize.recipe import QuantRecipe
from edgesep.runners.interpreter import op_details, open_interpreter, tensor_detail

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def make_converter(lowered: Any):
    """The float32 converter of edgesep.convert for a LoweredModel; each mode adds its options."""

    return convert_make_converter(lowered)


def _convert(lowered: Any, converter) -> bytes:
    """Run the converter; a failure becomes edgesep.convert's one-line UnsupportedOpError."""

    return to_tflite_bytes(lowered, converter=converter)


def float_model(lowered: Any) -> bytes:
    return _convert(lowered, make_converter(lowered))


def float16_model(lowered: Any) -> bytes:
    import tensorflow as tf

    converter = make_converter(lowered)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return _convert(lowered, converter)


def dynamic_model(lowered: Any) -> bytes:
    """Dynamic-range quantization: int8 weights, float activations, no calibration data."""
    import tensorflow as tf

    converter = make_converter(lowered)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return _convert(lowered, converter)


def calibrate(float_tflite: bytes, samples: Callable[[], Iterable[Sequence[np.ndarray]]]) -> bytes:
    """The float TFLite model with activation ranges measured on ``samples`` (lists of inputs in its layout).

    This is the calibrator TFLiteConverter runs on its own float conversion when a
    representative dataset is set (``_experimental_calibrate_only``); running it on the
    float model edgesep already converted gives identical int8 models without a second
    conversion (measured: same outputs, bit for bit, on SepCNN and MobileNetV2).
    """
    from tensorflow.lite.python.optimize import calibrator

    instrumented = calibrator.add_intermediate_tensors(float_tflite)
    generator = lambda: ([np.asarray(a, np.float32) for a in sample] for sample in samples())  # noqa: E731
    return bytes(calibrator.Calibrator(instrumented).calibrate(generator))


def quantize_calibrated(calibrated: bytes, recipe: QuantRecipe, *, debug: bool = False) -> bytes:
    """The int8 model from a calibrated one; ``debug`` adds NumericVerify ops (for the per-layer analysis).

    Ops whose int8 kernel XNNPACK refuses (BATCH_MATMUL, SOFTMAX, RSQRT, an ADD with input scales too far
    apart, ...) but whose float kernel it runs are kept in float: ``DEQUANTIZE -> op -> QUANTIZE``, which XNNPACK
    runs in the same partition, where the int8 op would run on TFLite's reference kernel between two partitions
    (``FloatIslands``). Not in ``debug`` mode: the per-layer analysis measures the int8 ops themselves.
    """
    keep_float = list(recipe.keep_float)
    if recipe.output_type == "float32":
        keep_float += [name for name in float_tail(calibrated) if name not in keep_float]
    if recipe.keep_float:
        names = layer_names(calibrated)
        unknown = sorted(set(keep_float) - set(names))
        if unknown:
            more = f" and {len(names) - 8} more (--analyze lists them)" if len(names) > 8 else ""
            raise ConfigError(f"keep_float names unknown layer(s) {unknown}; layers: {', '.join(names[:8])}{more}")
    model = _mlir_quantize(calibrated, recipe, keep_float, debug=debug)
    if debug:
        return model
    islands = FloatIslands(calibrated)
    for _ in range(ISLAND_PASSES):
        new = [name for name in islands.worth_keeping(model) if name not in keep_float]
        if not new:
            break
        keep_float += new
        model = _mlir_quantize(calibrated, recipe, keep_float, debug=False)
    return model


def _mlir_quantize(calibrated: bytes, recipe: QuantRecipe, keep_float: list[str], *, debug: bool) -> bytes:
    import tensorflow as tf
    from tensorflow.lite.python import convert as tf_convert

    kwargs: dict[str, Any] = {}
    if not debug:
        kwargs = {
            "input_data_type": tf.as_dtype(recipe.input_type),
            "output_data_type": tf.as_dtype(recipe.output_type),
        }
    model = tf_convert.mlir_quantize(
        calibrated,
        disable_per_channel=not recipe.per_channel,
        fully_quantize=False,  # as TFLiteConverter does: the I/O types come from input_data_type/output_data_type
        enable_numeric_verify=debug,
        denylisted_nodes=keep_float or None,
        **kwargs,
    )
    return bytes(model)


ISLAND_PASSES = 3  # re-quantizing can move scales: an island's neighbour may need one too (rare; bounded)
_CONVERSIONS = frozenset({"QUANTIZE", "DEQUANTIZE"})  # the int8 graph's own edges and the islands' boundaries


class FloatIslands:
    """Which ops of an int8 model to keep in float: those XNNPACK leaves out in int8 but runs in float (in the
    ``calibrated`` float model). An op XNNPACK runs in neither (GATHER) gains nothing from it and stays int8."""

    def __init__(self, calibrated: bytes) -> None:
        self.calibrated = calibrated
        self._float_side: tuple[set[str], set[str]] | None = None

    def worth_keeping(self, quantized: bytes) -> list[str]:
        """Output tensor names (the names keep_float takes) of the ops to keep in float."""
        left_out = _left_out_outputs(quantized)
        if not left_out:
            return []
        if self._float_side is None:  # computed once, and only for a model that has ops left out
            self._float_side = set(layer_names(self.calibrated)), set(_left_out_outputs(self.calibrated))
        layers, float_left_out = self._float_side
        return [name for name in left_out if name in layers and name not in float_left_out]


def _left_out_outputs(model: bytes) -> list[str]:
    """Output tensor names of the ops (other than QUANTIZE / DEQUANTIZE) that XNNPACK does not take."""

    left_out = [op.index for op in delegation(model).left_out if op.op not in _CONVERSIONS]
    if not left_out:
        return []
    runner = open_interpreter(model, allocate=False)
    ops = op_details(runner)
    return [tensor_detail(runner, i)["name"] for index in left_out for i in ops[index]["outputs"] if i >= 0]


# ops at a graph output that XNNPACK does not run in int8: with a float output they stay float (DEQUANTIZE before
# them instead of after), which keeps the whole graph in one XNNPACK partition at no cost in accuracy
INT8_UNDELEGATED_TAIL = frozenset({"SOFTMAX", "LOG_SOFTMAX"})


def float_tail(model: bytes) -> list[str]:
    """Output tensor names of the ops in INT8_UNDELEGATED_TAIL whose outputs are graph outputs."""
    runner = interpreter(model)
    outputs = {detail["index"] for detail in runner.get_output_details()}
    names = []
    for op in op_details(runner):
        if op["op_name"] in INT8_UNDELEGATED_TAIL and set(op["outputs"]) <= outputs:
            names += [tensor_detail(runner, i)["name"] for i in op["outputs"]]
    return names


def interpreter(model: bytes, *, preserve_all_tensors: bool = False):
    """An allocated ai-edge-litert interpreter for model bytes (no XNNPACK: exact reference kernels)."""
    return open_interpreter(model, xnnpack=False, preserve_all_tensors=preserve_all_tensors)


def layer_names(model: bytes) -> list[str]:
    """Output tensor names of the model's ops, in execution order: the names keep_float uses."""
    runner = interpreter(model)
    names: list[str] = []
    for op in op_details(runner):
        for index in op["outputs"]:
            if index >= 0:
                names.append(tensor_detail(runner, index)["name"])
    return names


def end_layers(model: bytes, fractions: tuple[float, float]) -> tuple[str, ...]:
    """Output tensor names (keep_float's names) of the first ``fractions[0]`` and the last ``fractions[1]`` of the
    model's ops in execution order (each rounded up to whole ops)."""
    names = layer_names(model)
    head, tail = (math.ceil(fraction * len(names)) for fraction in fractions)
    return tuple(names[:head]) + (tuple(names[len(names) - tail :]) if tail else ())


def float_layers(model: bytes) -> frozenset[str]:
    """Output tensor names of the ops that compute in float in a (mixed) int8 model: keeping them float again
    changes nothing (the float islands the engine made, a float tail, layers already in keep_float)."""
    runner = interpreter(model)
    names = set()
    for op in op_details(runner):
        if op["op_name"] in _CONVERSIONS:
            continue
        for index in op["outputs"]:
            if index >= 0 and np.dtype(tensor_detail(runner, index)["dtype"]) == np.float32:
                names.add(tensor_detail(runner, index)["name"])
    return frozenset(names)


def kernel_dtypes(model: bytes) -> dict[str, str]:
    """Stored weight dtypes per weighted op type, e.g. {"CONV_2D": "int8"} or "float32,int8" when mixed.

    Weights stored as int8/float16 behind a DEQUANTIZE op (dynamic and float16 modes) count as stored.
    """
    runner = interpreter(model)
    ops = op_details(runner)
    dequantized_from = {op["outputs"][0]: op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"}
    found: dict[str, set[str]] = {}
    for op in ops:
        if op["op_name"] not in WEIGHTED_OPS or len(op["inputs"]) < 2 or op["inputs"][1] < 0:
            continue
        index = dequantized_from.get(op["inputs"][1], op["inputs"][1])
        dtype = np.dtype(tensor_detail(runner, index)["dtype"]).name
        found.setdefault(op["op_name"], set()).add(dtype)
    return {name: ",".join(sorted(dtypes)) for name, dtypes in found.items()}
