"""Agreement of a quantized .tflite with its float reference, both run by ``runners.tflite.run_tflite``."""

from __future__ import annotations

from edgesep.numerics import Fidelity, compare_all
from edgesep.runners.tflite import ModelRun

__all__ = ["agreement"]


def agreement(reference: ModelRun, candidate: ModelRun) -> Fidelity:
    return compare_all(list(reference.outputs), list(candidate.outputs))
