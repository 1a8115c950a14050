"""Which layers break int8, judged by the model's output: keep one layer in float at a time, re-quantize from the
same calibration, run on held-out samples with XNNPACK and measure the task metric against the float model.

A layer's local error (``analysis.layer_errors``) says how far its own tensor moved; what matters is what that
does to the output (an error before a sigmoid threshold or a top-1 decision can be harmless or fatal). The
local error pre-selects candidates (cheap: one debug run); each candidate then costs one re-quantization and one
run, so the output-based ranking stays affordable on models with hundreds of ops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgesep.errors import ConfigError
from edgesep.quantize.ctc_metrics import string_agreement
from edgesep.quantize.face_metrics import face_agreement
from edgesep.quantize.layout_metrics import layout_agreement
from edgesep.quantize.map_metrics import box_agreement, map_iou
from edgesep.runners.tflite import ModelRun

MOVERS = frozenset({"PAD", "RESHAPE", "TRANSPOSE", "CONCATENATION", "SQUEEZE", "QUANTIZE", "DEQUANTIZE",
                    "STRIDED_SLICE", "SPLIT", "SLICE"})  # fmt: skip
METRICS = ("cosine", "top1", "iou@T", "piou@T", "boxes@T", "ctc", "layout@T", "face@T")


@dataclass(frozen=True)
class LayerSensitivity:
    """The task metric with only ``name`` in float, and what that gains over all-int8."""

    name: str
    op: str
    metric: float
    gain: float

    def to_dict(self) -> dict:
        return asdict(self)


def task_metric(name: str) -> Callable[[ModelRun, ModelRun], float]:
    """``cosine`` (mean per-sample cosine of the first output), ``top1`` (agreement of argmax over the last
    axis), ``iou@T`` (IoU of the first output thresholded at T, averaged over samples where the float map has
    any pixel above T: a text/segmentation map), ``piou@T`` (the same IoU pooled over those samples) or
    ``boxes@T`` (F1 of the text boxes found as DB post-processing does, at pixel threshold T:
    :mod:`edgesep.quantize.map_metrics`), ``ctc`` (a recognizer's greedy CTC strings equal to float's:
    :mod:`edgesep.quantize.ctc_metrics`), ``layout@T`` (F1 of PicoDet layout boxes at score threshold T:
    :mod:`edgesep.quantize.layout_metrics`) or ``face@T`` (MTCNN ONet's face/no-face decisions at face
    probability T: :mod:`edgesep.quantize.face_metrics`)."""
    if name == "cosine":
        return _mean_cosine
    if name == "top1":
        return _top1
    if name == "ctc":
        return lambda reference, candidate: string_agreement(reference.outputs[0], candidate.outputs[0])
    for prefix in ("iou@", "piou@", "boxes@", "layout@", "face@"):
        if name.startswith(prefix):
            try:
                threshold = float(name[len(prefix) :])
            except ValueError:
                raise ConfigError(f"metric {name!r}: write {prefix}THRESHOLD, e.g. {prefix}0.3") from None
            if prefix == "layout@":
                return lambda reference, candidate: layout_agreement(reference.outputs, candidate.outputs, conf=threshold)
            if prefix == "face@":
                return lambda reference, candidate: face_agreement(reference.outputs, candidate.outputs, threshold=threshold)
            if prefix == "boxes@":
                return lambda reference, candidate: box_agreement(_first(reference), _first(candidate), threshold=threshold)
            pooled = prefix == "piou@"
            return lambda reference, candidate: map_iou(_first(reference), _first(candidate), threshold=threshold, pooled=pooled)
    raise ConfigError(f"unknown metric {name!r}; use one of {', '.join(METRICS)}")


def rank_layers(
    quantize_with_float: Callable[[tuple[str, ...]], bytes],
    run: Callable[[bytes], ModelRun],
    reference: ModelRun,
    candidates: Sequence[tuple[str, str]],
    *,
    metric: Callable[[ModelRun, ModelRun], float],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float, tuple[LayerSensitivity, ...]]:
    """(all-int8 metric, candidates ranked by the metric gained when each alone stays float, best first).

    ``quantize_with_float(names)`` returns the int8 model with ``names`` kept float; ``run`` runs a model on
    the held-out samples; ``candidates`` are (tensor name, op type) pairs.
    """
    baseline = metric(reference, run(quantize_with_float(())))
    ranked = []
    for index, (name, op) in enumerate(candidates):
        value = metric(reference, run(quantize_with_float((name,))))
        ranked.append(LayerSensitivity(name, op, value, value - baseline))
        if progress is not None:
            progress(index + 1, len(candidates))
    ranked.sort(key=lambda s: -s.gain)
    return baseline, tuple(ranked)


def greedy_fallback(
    quantize_with_float: Callable[[tuple[str, ...]], bytes],
    run: Callable[[bytes], ModelRun],
    reference: ModelRun,
    candidates: Sequence[tuple[str, str]],
    *,
    metric: Callable[[ModelRun, ModelRun], float],
    count: int,
) -> tuple[tuple[str, ...], tuple[LayerSensitivity, ...]]:
    """Choose ``count`` layers to keep in float, one at a time: each round ranks the remaining candidates with
    the layers chosen so far already float (a tensor with a bad range hurts where it is read, so the second
    layer of a pair only shows its worth once the first is float). ``count`` is a maximum: a round in which no
    candidate raises the metric ends the search (a float layer that gains nothing only costs latency). Returns
    (chosen, the first round's ranking)."""
    chosen: tuple[str, ...] = ()
    first: tuple[LayerSensitivity, ...] = ()
    for _ in range(count):
        remaining = [c for c in candidates if c[0] not in chosen]
        if not remaining:
            break
        _, ranked = rank_layers(functools.partial(_with_kept, quantize_with_float, chosen), run, reference, remaining,
                                metric=metric)  # fmt: skip
        first = first or ranked
        if ranked[0].gain <= 0:
            break
        chosen += (ranked[0].name,)
    return chosen, first


def _with_kept(quantize_with_float: Callable[[tuple[str, ...]], bytes], kept: tuple[str, ...],
               names: tuple[str, ...]) -> bytes:  # fmt: skip
    return quantize_with_float(kept + names)


def _first(run: ModelRun) -> np.ndarray:
    return np.asarray(run.outputs[0], np.float64)


def _mean_cosine(reference: ModelRun, candidate: ModelRun) -> float:
    a = _first(reference).reshape(len(reference.outputs[0]), -1)
    b = _first(candidate).reshape(len(candidate.outputs[0]), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosines = np.where(norms > 0, np.sum(a * b, axis=1) / np.maximum(norms, 1e-300), 1.0)
    return float(np.mean(cosines))


def _top1(reference: ModelRun, candidate: ModelRun) -> float:
    return float(np.mean(_first(reference).argmax(axis=-1) == _first(candidate).argmax(axis=-1)))
