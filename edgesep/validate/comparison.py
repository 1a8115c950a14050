"""Compare two results files (float baseline vs quantized candidate) on the host.

The device only measures; everything here works from saved ``RunResults`` so
"run on the Pi, compare on the laptop" is the normal case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgesep.errors import InputError, ShapeError
from edgesep.numerics import Fidelity, compare
from edgesep.results import RunResults
from edgesep.validate.metrics import (
    LatencyStats,
    accuracy_drop_pp,
    latency_from_benchmark_model,
    latency_stats,
    mcnemar_p,
    size_ratio,
    speedup,
    top1_flips,
    topk_accuracy,
)


class RunLike(Protocol):
    """The fields of ``edgesep.results.RunResults`` that a comparison reads."""

    # read-only properties, so that frozen dataclasses (RunResults) match
    @property
    def tag(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    @property
    def model_bytes(self) -> int: ...

    @property
    def latencies_ms(self) -> np.ndarray: ...

    @property
    def warmup(self) -> int: ...

    @property
    def threads(self) -> int | None: ...

    @property
    def outputs(self) -> np.ndarray | None: ...

    @property
    def device(self) -> dict[str, Any]: ...

    @property
    def emulated(self) -> bool: ...

    @property
    def complete(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True)
class ModelSummary:
    """One model's figures on one device."""

    tag: str
    model_name: str
    size_bytes: int
    latency: LatencyStats | None
    top1: float | None
    top5: float | None
    samples: int
    warmup: int
    threads: int | None
    complete: bool
    emulated: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "model_name": self.model_name,
            "size_bytes": self.size_bytes,
            "latency_ms": None if self.latency is None else self.latency.to_dict(),
            "top1": self.top1,
            "top5": self.top5,
            "samples": self.samples,
            "warmup": self.warmup,
            "threads": self.threads,
            "complete": self.complete,
            "emulated": self.emulated,
            "error": self.error,
        }


@dataclass(frozen=True)
class Comparison:
    """Float vs quantized: each model's figures plus how closely the candidate follows the baseline."""

    baseline: ModelSummary
    candidate: ModelSummary
    agreement: Fidelity | None  # None when outputs are missing (latency-only runs)
    speedup: float | None  # baseline p50 / candidate p50
    size_ratio: float | None  # baseline bytes / candidate bytes
    accuracy_drop_pp: float | None  # top-1, percentage points
    flips: tuple[int, int] | None = None  # (lost, gained) top-1 vs labels; None without labels
    device: dict = field(default_factory=dict)

    @property
    def emulated(self) -> bool:
        return self.baseline.emulated or self.candidate.emulated

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict(),
            "agreement": None if self.agreement is None else self.agreement.to_dict(),
            "speedup": self.speedup,
            "size_ratio": self.size_ratio,
            "accuracy_drop_pp": self.accuracy_drop_pp,
            "top1_lost": None if self.flips is None else self.flips[0],
            "top1_gained": None if self.flips is None else self.flips[1],
            "mcnemar_p": None if self.flips is None else mcnemar_p(*self.flips),
            "emulated": self.emulated,
            "device": self.device,
        }


def _load(results: RunLike | str | Path) -> RunLike:
    if isinstance(results, (str, Path)):
        return RunResults.load(results)
    return results


def first_output(outputs: Any) -> np.ndarray | None:
    """The primary output array (the first one when a run saved several)."""
    if outputs is None:
        return None
    if isinstance(outputs, np.ndarray):
        return outputs
    if isinstance(outputs, dict):
        return np.asarray(next(iter(outputs.values()))) if outputs else None
    if isinstance(outputs, (list, tuple)):
        return np.asarray(outputs[0]) if outputs else None
    return np.asarray(outputs)


def summarize(results: RunLike | str | Path, *, labels: np.ndarray | None = None) -> ModelSummary:
    """One model's figures from one results file."""
    run = _load(results)
    outputs = first_output(run.outputs)
    samples = 0 if outputs is None else int(outputs.shape[0])
    top1 = top5 = None
    if labels is not None and outputs is not None:
        labels = np.asarray(labels).ravel()
        if labels.shape[0] != samples:
            if run.complete:
                raise ShapeError(f"{run.tag}: {samples} outputs but {labels.shape[0]} labels")
            labels = labels[:samples]  # an interrupted run: score what was measured
        top1 = topk_accuracy(outputs, labels, k=1)
        top5 = topk_accuracy(outputs, labels, k=5)
    return ModelSummary(
        tag=run.tag,
        model_name=run.model_name,
        size_bytes=int(run.model_bytes),
        latency=latency_stats(run.latencies_ms) or latency_from_benchmark_model((getattr(run, "extra", None) or {}).get("benchmark_model")),
        top1=top1,
        top5=top5,
        samples=samples,
        warmup=int(run.warmup),
        threads=run.threads,
        complete=bool(run.complete),
        emulated=bool(run.emulated),
        error=run.error,
    )


def output_fidelity(baseline: np.ndarray | None, candidate: np.ndarray | None) -> Fidelity | None:
    """max-abs, cosine, top-1 agreement of two output batches (common prefix; None without outputs)."""
    if baseline is None or candidate is None or baseline.size == 0 or candidate.size == 0:
        return None
    n = min(baseline.shape[0], candidate.shape[0])  # interrupted runs: compare the common prefix
    if baseline.shape[1:] != candidate.shape[1:]:
        raise ShapeError(f"output shapes differ: baseline {baseline.shape} vs candidate {candidate.shape}")
    ref, cand = baseline[:n], candidate[:n]
    if ref.ndim > 2:
        ref, cand = ref.reshape(n, -1), cand.reshape(n, -1)
    return compare(ref, cand)


def compare_runs(
    float_results: RunLike | str | Path,
    quant_results: RunLike | str | Path,
    *,
    labels: np.ndarray | None = None,
) -> Comparison:
    """Compare a float baseline run with a quantized candidate run (objects or ``*.results.json`` paths)."""
    base_run, cand_run = _load(float_results), _load(quant_results)
    base = summarize(base_run, labels=labels)
    cand = summarize(cand_run, labels=labels)
    base_out, cand_out = first_output(base_run.outputs), first_output(cand_run.outputs)
    if (base_out is None) != (cand_out is None):
        raise InputError("one results file has outputs and the other has none; run both on the same inputs")
    both_complete = base_out is not None and cand_out is not None and base.complete and cand.complete
    if both_complete and base_out is not None and cand_out is not None and base_out.shape[0] != cand_out.shape[0]:
        raise ShapeError(f"baseline has {base_out.shape[0]} outputs, candidate {cand_out.shape[0]}")
    return Comparison(
        baseline=base,
        candidate=cand,
        agreement=output_fidelity(base_out, cand_out),
        speedup=speedup(base.latency, cand.latency),
        size_ratio=size_ratio(base.size_bytes, cand.size_bytes),
        accuracy_drop_pp=accuracy_drop_pp(base.top1, cand.top1),
        flips=None
        if labels is None or base_out is None or cand_out is None
        else top1_flips(base_out, cand_out, np.asarray(labels).ravel()),
        device=dict(cand_run.device or base_run.device or {}),
    )
