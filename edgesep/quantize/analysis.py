"""Per-layer quantization error, worst first, and the choice of layers to keep in float.

The int8 model is built once more with NumericVerify ops (TensorFlow's quantization
debugger mechanism): each quantized layer also runs in float *from the same
quantized input*, so the error measured for a layer is the error that layer adds,
not the error it inherits.  Per layer: RMSE of (float - dequantized int8) divided by
the float activation's range over the data, and the SNR in dB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgesep.quantize.engine import interpreter, layer_names, quantize_calibrated
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.sensitivity import MOVERS
from edgesep.runners.interpreter import op_details, tensor_detail


@dataclass(frozen=True)
class LayerError:
    """The error one quantized layer adds (``relative_rmse`` = RMSE / float range)."""

    name: str
    op: str
    relative_rmse: float
    snr_db: float
    rmse: float
    max_abs: float
    value_range: float

    def to_dict(self) -> dict:
        return asdict(self)


class _Accumulator:
    def __init__(self) -> None:
        self.sq_err = 0.0
        self.sq_ref = 0.0
        self.count = 0
        self.lo = np.inf
        self.hi = -np.inf
        self.max_abs = 0.0

    def add(self, reference: np.ndarray, quantized: np.ndarray) -> None:
        diff = reference.astype(np.float64) - quantized
        self.sq_err += float(np.sum(diff * diff))
        self.sq_ref += float(np.sum(reference.astype(np.float64) ** 2))
        self.count += diff.size
        self.lo = min(self.lo, float(reference.min()))
        self.hi = max(self.hi, float(reference.max()))
        self.max_abs = max(self.max_abs, float(np.abs(diff).max()))


def layer_errors(
    calibrated: bytes,
    samples: Sequence[Sequence[np.ndarray]],
    *,
    recipe: QuantRecipe = QuantRecipe(),
) -> tuple[LayerError, ...]:
    """Per-layer error of the int8 model (``recipe``'s per-channel and keep_float), worst first.

    ``samples`` are lists of float inputs in the TFLite model's layout.
    """

    debug_model = quantize_calibrated(calibrated, recipe, debug=True)
    runner = interpreter(debug_model, preserve_all_tensors=True)
    known = set(layer_names(calibrated))
    verify_ops = [op for op in op_details(runner) if op["op_name"].upper().replace("_", "") == "NUMERICVERIFY"]
    producers = {index: op["op_name"] for op in op_details(runner) for index in op["outputs"]}
    stats: dict[int, _Accumulator] = {op["index"]: _Accumulator() for op in verify_ops}
    inputs = runner.get_input_details()
    for sample in samples:
        for detail, array in zip(inputs, sample):
            runner.set_tensor(detail["index"], np.ascontiguousarray(array, dtype=detail["dtype"]))
        runner.invoke()
        for op in verify_ops:
            q_index, f_index = op["inputs"][:2]
            scale, zero_point = tensor_detail(runner, q_index)["quantization"]
            quantized = (runner.get_tensor(q_index).astype(np.float64) - zero_point) * scale
            stats[op["index"]].add(runner.get_tensor(f_index), quantized)
    results = []
    for op in verify_ops:
        q_index = op["inputs"][0]
        acc = stats[op["index"]]
        if acc.count == 0:
            continue
        rmse = float(np.sqrt(acc.sq_err / acc.count))
        value_range = float(acc.hi - acc.lo)
        results.append(
            LayerError(
                name=_layer_name(runner, q_index, op["inputs"][1], known),
                op=producers.get(q_index, "?"),
                relative_rmse=rmse / value_range if value_range > 0 else rmse,
                snr_db=_snr_db(acc.sq_ref, acc.sq_err),
                rmse=rmse,
                max_abs=acc.max_abs,
                value_range=value_range,
            )
        )
    return tuple(sorted(results, key=lambda layer: layer.relative_rmse, reverse=True))


def worst_layers(layers: Sequence[LayerError], count: int, *, exclude: Sequence[str] = ()) -> tuple[str, ...]:
    """Names of the ``count`` worst layers that carry weights or compute (not pure data movement)."""

    chosen = [layer.name for layer in layers if layer.op not in MOVERS and layer.name not in exclude]
    return tuple(chosen[: max(0, count)])


def _layer_name(runner, q_index: int, f_index: int, known: set[str]) -> str:
    """The float model's tensor name for a verified tensor.

    The debug model keeps the float tensor's name on the float copy and renames the
    quantized one (``name`` + digit), except for model outputs where both get a suffix.
    """
    q_name = tensor_detail(runner, q_index)["name"]
    f_name = tensor_detail(runner, f_index)["name"]
    if f_name in known:
        return f_name
    for name in (f_name, q_name):
        if name[-1:].isdigit() and name[:-1] in known:
            return name[:-1]
    return f_name


def _snr_db(signal: float, noise: float) -> float:
    if noise <= 0.0:
        return float("inf")
    if signal <= 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))
