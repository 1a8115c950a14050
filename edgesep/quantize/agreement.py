"""Run a float and a quantized .tflite on the same inputs: output agreement and mean latency."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesep.numerics import Fidelity, compare_all


@dataclass(frozen=True)
class ModelRun:
    outputs: tuple[np.ndarray, ...]  # one (N, ...) float32 array per model output (dequantized)
    latency_ms: float  # mean over the samples, batch 1


def run_tflite(model: bytes, samples: Sequence[Sequence[np.ndarray]], *, threads: int | None = 1) -> ModelRun:
    """Run ``model`` on each sample (a list of batch-1 float inputs in the model's layout)."""
    from edgesep.runners.tflite import TfliteRunner

    with tempfile.TemporaryDirectory(prefix="edgesep-quantize-") as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(model)
        collected: list[list[np.ndarray]] = []
        times: list[float] = []
        with TfliteRunner(path, threads=threads) as runner:
            names = list(runner.input_names)
            for sample in samples:
                result = runner.infer(dict(zip(names, sample)))
                collected.append([np.asarray(result[name], np.float32) for name in runner.output_names])
                times.append(runner.last_inference_ms or 0.0)
    outputs = tuple(np.concatenate([c[i] for c in collected], axis=0) for i in range(len(collected[0])))
    return ModelRun(outputs=outputs, latency_ms=float(np.mean(times)) if times else 0.0)


def agreement(reference: ModelRun, candidate: ModelRun) -> Fidelity:
    return compare_all(list(reference.outputs), list(candidate.outputs))
