"""Apply percentile / MSE / entropy activation ranges to the TFLite int8 quantizer.

Design: the converter's two-stage int8 path (``engine.calibrate`` -> ``engine.quantize_calibrated``) stores
the min/max it measured for every activation tensor in the calibrated float model's flatbuffer
(``Tensor.quantization.min/max``); the second stage derives each scale and zero point from them.  Between
the stages we run the calibrated model on the same calibration samples (interpreter with all tensors
preserved), fill one :class:`~edgesep.quantize.ranges.RangeHistogram` per activation tensor, compute the
chosen range and write it back into the flatbuffer.  Graph inputs and outputs keep their min/max
(clipping inputs only loses information; clipping the largest logits can flip the top-1 class), and so do the
logits that a final softmax/argmax reads (DECISION_OPS); ops that must keep their input's scale (pad, reshape,
max-pool, ...) get their input's range.  No graph change, so int8 latency is unchanged.

Heavy: imports TensorFlow's flatbuffer utilities and the interpreter; import lazily.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgesep.convert.tflite_inspect import op_name, read_model, write_model
from edgesep.errors import CalibrationError
from edgesep.quantize.ranges import RangeConfig, RangeHistogram, compute_range
from edgesep.runners.interpreter import open_interpreter

# Ops whose int8 kernels need the output scale equal to the input scale (data movement, max).
SAME_SCALE_OPS = (
    "PAD", "PADV2", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "MAX_POOL_2D", "SLICE", "STRIDED_SLICE",
    "GATHER", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "RESIZE_NEAREST_NEIGHBOR",
)  # fmt: skip


# Ops at a graph output that turn scores into a decision: their input (the logits) keeps its full min/max, as a
# graph output does. A tighter range saturates the largest logits to one value, and argmax then picks the
# lowest class index among the tied (the CTC blank, class 0, of a recognizer). Measured on PP-OCRv5 rec: MSE
# clipped its logits at 12.1 (max 25.2).
DECISION_OPS = ("SOFTMAX", "LOG_SOFTMAX", "ARG_MAX")


@dataclass(frozen=True)
class TensorRange:
    index: int
    name: str
    calibrated: tuple[float, float]  # what the converter's min/max calibration stored
    applied: tuple[float, float]

    @property
    def tightening(self) -> float:
        """applied width / calibrated width (1 = unchanged)."""
        width = self.calibrated[1] - self.calibrated[0]
        return (self.applied[1] - self.applied[0]) / width if width > 0 else 1.0


def _activation_tensors(model) -> dict[int, tuple[float, float]]:
    graph = model.subgraphs[0]
    found = {}
    for index, tensor in enumerate(graph.tensors):
        quant = tensor.quantization
        if quant is None or quant.min is None or quant.max is None or len(quant.min) != 1:
            continue
        found[index] = (float(quant.min[0]), float(quant.max[0]))
    return found


def decision_logits(model) -> set[int]:
    """Indices of the tensors a DECISION_OPS op at a graph output reads, and the tensors they are moved from
    (reshape, squeeze, ...: SAME_SCALE_OPS)."""
    graph = model.subgraphs[0]
    outputs = {int(i) for i in graph.outputs}
    producer = {int(index): op for op in graph.operators for index in op.outputs}
    found: set[int] = set()
    for op in graph.operators:
        if op_name(model, op) not in DECISION_OPS or not {int(i) for i in op.outputs} & outputs:
            continue
        index = int(op.inputs[0])
        while index not in found:
            found.add(index)
            source = producer.get(index)
            if source is None or op_name(model, source) not in SAME_SCALE_OPS or not len(source.inputs):
                break
            index = int(source.inputs[0])
    return found


def collect_histograms(
    calibrated: bytes, samples: Iterable[Sequence[np.ndarray]], *, indices: Sequence[int], bins: int = 4096
) -> dict[int, RangeHistogram]:
    """Run ``calibrated`` on ``samples`` (input lists in the TFLite layout) and histogram the given tensors."""
    runner = open_interpreter(calibrated, xnnpack=False, preserve_all_tensors=True)
    inputs = runner.get_input_details()
    histograms = {index: RangeHistogram(bins=bins) for index in indices}
    count = 0
    for sample in samples:
        for detail, array in zip(inputs, sample):
            runner.set_tensor(detail["index"], np.asarray(array, dtype=detail["dtype"]))
        runner.invoke()
        for index, histogram in histograms.items():
            histogram.update(runner.get_tensor(index))
        count += 1
    if count == 0:
        raise CalibrationError("no calibration samples to collect activation histograms from")
    return histograms


def apply_activation_ranges(
    calibrated: bytes, samples: Iterable[Sequence[np.ndarray]], config: RangeConfig
) -> tuple[bytes, tuple[TensorRange, ...]]:
    """The calibrated model with each activation's min/max replaced by ``config.method``'s range.

    Also for ``minmax``: TensorFlow's calibrator logs an op's inputs after the op ran, and TFLite runs ADD/MUL in
    place when their input dies there, so the input's logged max is the op's output (measured on PP-OCRv5 det:
    the relu6(x + 3) of every int8 HardSwish got the range [-2, 1030] of the product after it, one int8 level
    for 0..6, IoU 0.02 against float).  Our pass preserves all tensors, so no buffer is reused.
    """
    model = read_model(calibrated)
    graph = model.subgraphs[0]
    stored = _activation_tensors(model)
    graph_io = {int(i) for i in graph.inputs} | {int(i) for i in graph.outputs}
    wanted = [i for i in stored if i not in graph_io]
    histograms = collect_histograms(calibrated, samples, indices=wanted, bins=config.bins)
    logits = decision_logits(model)
    full = replace(config, method="minmax")
    ranges = {i: compute_range(histograms[i], full if i in logits else config) for i in wanted}
    for op in graph.operators:
        if op_name(model, op) in SAME_SCALE_OPS and len(op.inputs) and len(op.outputs):
            source, target = int(op.inputs[0]), int(op.outputs[0])
            if target in ranges and (source in ranges or source in stored):
                ranges[target] = ranges[source] if source in ranges else stored[source]
    applied = []
    for index, (low, high) in ranges.items():
        quant = graph.tensors[index].quantization
        quant.min = np.array([low], dtype=np.float32)
        quant.max = np.array([high], dtype=np.float32)
        name = graph.tensors[index].name
        name = name.decode() if isinstance(name, bytes) else str(name)
        applied.append(TensorRange(index, name, stored[index], (low, high)))
    return write_model(model), tuple(applied)
