"""Empirical bias correction on the int8 TFLite model itself (any float source: ONNX, Keras; no PyTorch model).

int8 weights and requantized activations shift the mean of every output channel.  For each CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED op with an int32 bias, in execution order, the per-channel mean of its
dequantized int8 output on the calibration samples is compared with the float model's same tensor (matched
by name: the quantizer keeps the calibrated model's tensor names) and ``round(mean error / bias scale)`` is
subtracted from the op's int32 bias.  Layer by layer, so that each layer is measured with every layer upstream
already corrected (measuring each layer alone lets upstream shifts pile up; see docs/QUANTIZATION.md).  Ops
that do not depend on each other are corrected in the same pass: one pass over the samples per level of
weighted ops, not per op.

The int32 bias values are rewritten in place in the flatbuffer bytes (same sizes, same graph, so the model's
ops, XNNPACK partitions and latency do not change); a bias buffer that several tensors share is first given its
own copy.  Ops without a bias, with a float bias (layers kept in float) or whose output has no float
counterpart are left alone and listed.

Heavy: imports TensorFlow's flatbuffer schema (through ``convert.tflite_inspect``) and the interpreter; import lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesep.convert.tflite_inspect import constant_data, own_buffers
from edgesep.errors import CalibrationError
from edgesep.quantize.int8_layers import output_tensors, run_samples, weighted_ops
from edgesep.runners.interpreter import open_interpreter, tensor_detail

DEFAULT_MAX_SAMPLES = 64  # per pass; the mean of 64 feature maps is stable to well below one bias step
INT32 = np.iinfo(np.int32)
MIN_ACTIVE = 0.25  # at most 4x the measured error is moved into a bias (channels mostly clamped are left near it)


@dataclass(frozen=True)
class CorrectedLayer:
    name: str
    op: str
    level: int  # pass in which it was corrected (1 = no weighted op upstream)
    mean_abs_error: float  # mean over channels of |int8 mean - float mean| before its correction
    max_step: int  # largest |change| of one int32 bias entry


@dataclass(frozen=True)
class Int8BiasReport:
    layers: tuple[CorrectedLayer, ...]
    skipped: tuple[str, ...]  # "name (reason)"
    samples: int
    passes: int

    @property
    def max_shift(self) -> float:
        return max((layer.mean_abs_error for layer in self.layers), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's ``quantization.prepared.bias_correction`` (same keys as the PyTorch report, and more)."""
        return {
            "method": "empirical",
            "on": "int8 tflite",
            "layers": [layer.name for layer in self.layers],
            "max_shift": self.max_shift,
            "samples": self.samples,
            "passes": self.passes,
            "mean_abs_error": {layer.name: layer.mean_abs_error for layer in self.layers},
            "skipped": list(self.skipped),
        }


def correct_int8_bias(
    quantized: bytes,
    float_model: bytes,
    samples: Sequence[Sequence[np.ndarray]],
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> tuple[bytes, Int8BiasReport]:
    """``quantized`` with its int32 biases corrected against ``float_model`` (the calibrated float model it was
    quantized from) on ``samples`` (float input lists in the TFLite layout; the first ``max_samples`` are used)."""
    samples = list(samples)[: max(1, int(max_samples))]
    if not samples:
        raise CalibrationError("no calibration samples for bias correction")
    targets, skipped = weighted_ops(quantized, float_model, check=_check)
    model = bytearray(own_buffers(quantized, {t.bias for t in targets}))  # tensor indices stay the same
    float_means = _float_means(float_model, samples, {t.float_name for t in targets})
    offsets = constant_data(model, "int32")
    corrected = []
    levels = sorted({t.level for t in targets})
    for level in levels:
        batch = [t for t in targets if t.level == level]
        stats = _int8_stats(bytes(model), samples, [t.output for t in batch])
        for target in batch:
            mean, active = stats[target.output]
            error = mean - float_means[target.float_name]
            start, stop, scales = offsets[target.bias]
            bias = np.frombuffer(bytes(model[start:stop]), dtype="<i4").astype(np.int64)
            if len(error) != len(bias):
                skipped.append(f"{target.name} (bias has {len(bias)} entries, output {len(error)} channels)")
                continue
            # a fused ReLU/ReLU6 (or int8 saturation) passes a bias change only where the output is not clamped:
            # d E[relu(z + b)] / db = P(not clamped), so the pre-activation needs error / P (first order)
            shift = error / np.maximum(active, MIN_ACTIVE)
            step = np.round(shift / np.broadcast_to(scales, bias.shape)).astype(np.int64)
            new = np.clip(bias - step, INT32.min, INT32.max).astype("<i4")
            model[start:stop] = new.tobytes()
            corrected.append(CorrectedLayer(target.name, target.op, level, float(np.mean(np.abs(error))), int(np.abs(step).max(initial=0))))
    report = Int8BiasReport(tuple(corrected), tuple(skipped), samples=len(samples), passes=len(levels))
    return bytes(model), report


def _check(runner: Any, op: dict[str, Any]) -> str:
    """Why an op's bias cannot be corrected ("" when it can)."""
    inputs = [int(i) for i in op["inputs"]]
    if len(inputs) < 3 or inputs[2] < 0:
        return "no bias"
    output = tensor_detail(runner, int(op["outputs"][0]))
    if np.dtype(tensor_detail(runner, inputs[2])["dtype"]) != np.int32 or np.dtype(output["dtype"]) != np.int8:
        return "not int8 with an int32 bias"
    return ""


def _channel_means(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1, array.shape[-1]).astype(np.float64).mean(axis=0)


def _float_means(float_model: bytes, samples: Sequence[Sequence[np.ndarray]], names: set[str]) -> dict[str, np.ndarray]:
    indices = output_tensors(float_model, names)
    sums: dict[str, np.ndarray] = {}

    def read(interpreter) -> None:
        for name, index in indices.items():
            means = _channel_means(interpreter.get_tensor(index))
            sums[name] = sums[name] + means if name in sums else means

    run_samples(float_model, samples, read)
    return {name: total / len(samples) for name, total in sums.items()}


def _int8_stats(model: bytes, samples: Sequence[Sequence[np.ndarray]], outputs: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per output tensor: the per-channel mean of its dequantized int8 values over ``samples`` and the per-channel
    fraction of values strictly between the lowest and highest int8 level the tensor reached (not clamped by a
    fused activation or saturation)."""
    runner = open_interpreter(model, xnnpack=False, allocate=False)
    grids = {index: tensor_detail(runner, index)["quantization"] for index in outputs}
    counts: dict[int, np.ndarray] = {}

    def read(interpreter) -> None:
        for index in outputs:
            values = interpreter.get_tensor(index)
            channels = values.shape[-1]
            flat = values.reshape(-1, channels).astype(np.int64) + 128 + 256 * np.arange(channels)
            found = np.bincount(flat.ravel(), minlength=256 * channels).reshape(channels, 256)
            counts[index] = counts[index] + found if index in counts else found

    run_samples(model, samples, read)
    stats = {}
    levels = np.arange(-128, 128, dtype=np.float64)
    for index, count in counts.items():
        scale, zero_point = grids[index]
        total = count.sum(axis=1).astype(np.float64)
        mean = (count @ levels / total - zero_point) * scale
        reached = np.flatnonzero(count.sum(axis=0))
        clamped = count[:, reached[0]] + (count[:, reached[-1]] if reached[-1] != reached[0] else 0)
        stats[index] = (mean, 1.0 - clamped / total)
    return stats
