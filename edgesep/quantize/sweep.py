"""Recipe sweep (#8): quantize with each candidate recipe, measure it on held-out data, pick the best.

Light module: everything heavy is imported by ``quantize`` and the TFLite runner when ``sweep`` runs.
Each candidate is quantized into a temp folder by :func:`edgesep.quantize.quantize` (top-1 agreement and
cosine vs the float32 TFLite on the held-out split); the candidate's int8 model is then run here on the
same held-out samples (accuracy when the source has labels, e.g. ``digits``) and timed (p50 of
``latency_runs`` batch-1 runs, 1 thread).  The best is the highest agreement, then cosine, among the
candidates whose p50 fits ``latency_budget_ms``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.convert.tflite_inspect import delegation
from edgesep.errors import ConfigError, ThresholdError
from edgesep.fileio import check_output, publish_model
from edgesep.quantize.calibration import IndexedSource, draw, open_source
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.sensitivity import task_metric
from edgesep.quantize.source import resolve
from edgesep.quantize.step import quantize
from edgesep.runners.tflite import TfliteRunner
from edgesep.sidecar import read_sidecar

LATENCY_RUNS = 30
BIAS_CANDIDATE = "per-channel percentile + bias"  # empirical bias correction of the int8 TFLite model (any source)
QAT_EPOCHS = 3  # of the sweep's QAT candidates, unless the base recipe names its own
ADAROUND_CANDIDATE = "per-channel percentile + adaround"  # AdaRound of the int8 TFLite model's weights (any source)
# PP-OCRv5 rec (400 word crops, docs/QUANTIZATION.md): 0.955 of CTC strings on the bench's calibration draw, where all
# int8 gives 0.935; on two other draws of 64 crops 0.873 / 0.733 (all int8: 0.945 / 0.755). A candidate, not a default.
FLOAT_ENDS = (0.02, 0.0)
FLOAT_ENDS_CANDIDATE = "per-channel mse + equalized activations + float stem"  # recipe float_ends=FLOAT_ENDS


@dataclass(frozen=True)
class Candidate:
    name: str
    recipe: QuantRecipe


@dataclass(frozen=True)
class SweepRow:
    """One candidate's measurements (``skipped`` says why it was not run; numbers are then None)."""

    name: str
    recipe: QuantRecipe
    top1_agreement: float | None = None
    cosine: float | None = None
    accuracy: float | None = None
    p50_ms: float | None = None
    size_bytes: int | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipe": self.recipe.to_dict(),
            "top1_agreement": self.top1_agreement,
            "cosine": self.cosine,
            "accuracy": self.accuracy,
            "p50_ms": self.p50_ms,
            "size_bytes": self.size_bytes,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class SweepResult:
    rows: tuple[SweepRow, ...]
    chosen: str  # name of the best row within the budget
    latency_budget_ms: float | None
    eval_samples: int
    path: Path | None = None  # where the chosen model was written (sweep(output=...))

    @property
    def best(self) -> SweepRow:
        return next(row for row in self.rows if row.name == self.chosen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [row.to_dict() for row in self.rows],
            "chosen": self.chosen,
            "latency_budget_ms": self.latency_budget_ms,
            "eval_samples": self.eval_samples,
            "path": None if self.path is None else str(self.path),
        }


def default_candidates(base: QuantRecipe = QuantRecipe(), *, qat: bool = False) -> tuple[Candidate, ...]:
    """Per-channel min/max (baseline), per-tensor naive, per-tensor + CLE + empirical bias correction (on the PyTorch
    model), each non-minmax activation range method on per-channel, per-channel percentile with empirical bias
    correction of the int8 TFLite model (int8_bias.py: any float source), per-channel MSE and percentile with the
    activations equalized on the ONNX graph (equalize_onnx.py), MSE + equalized with the stem kept float
    (FLOAT_ENDS), per-channel percentile with AdaRound of the int8 weights (adaround.py: any float source; the
    costliest to make); with ``qat`` (a PyTorch model is given) also per-channel and per-tensor min/max after
    quantization-aware fine-tuning (qat.py)."""
    plain = replace(base, per_channel=True, equalize=False, bias_correction="none", activation_range="minmax", qat_epochs=0,
                    equalize_activations=False, weight_rounding="nearest")  # fmt: skip
    candidates = [
        Candidate("per-channel minmax", plain),
        Candidate("per-tensor naive", replace(plain, per_channel=False)),
        Candidate("per-tensor + equalize + bias", replace(plain, per_channel=False, equalize=True, bias_correction="empirical")),
    ]
    for method in ("percentile", "mse", "entropy"):
        candidates.append(Candidate(f"per-channel {method}", replace(plain, activation_range=method)))
    candidates.append(Candidate(BIAS_CANDIDATE, replace(plain, activation_range="percentile", bias_correction="empirical")))
    for method in ("mse", "percentile"):
        equalized = replace(plain, activation_range=method, equalize_activations=True)
        candidates.append(Candidate(f"per-channel {method} + equalized activations", equalized))
    candidates.append(Candidate(FLOAT_ENDS_CANDIDATE, replace(plain, activation_range="mse", equalize_activations=True,
                                                              float_ends=FLOAT_ENDS)))  # fmt: skip
    candidates.append(Candidate(ADAROUND_CANDIDATE, replace(plain, activation_range="percentile", weight_rounding="adaround")))
    if qat:
        epochs = base.qat_epochs or QAT_EPOCHS
        candidates.append(Candidate("per-channel minmax + QAT", replace(plain, qat_epochs=epochs)))
        candidates.append(Candidate("per-tensor + QAT", replace(plain, per_channel=False, qat_epochs=epochs)))
    return tuple(candidates)


def sweep(
    model_path: str | Path,
    *,
    calibration: Any,
    model: Any = None,
    weights: str | Path | None = None,
    candidates: Sequence[Candidate] | None = None,
    base: QuantRecipe = QuantRecipe(),
    latency_budget_ms: float | None = None,
    holdout: int = 100,
    latency_runs: int = LATENCY_RUNS,
    output: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> SweepResult:
    """Quantize ``model_path`` with each candidate (default :func:`default_candidates` of ``base``, with the QAT
    candidates when ``model`` is given) and
    measure each on ``holdout`` held-out samples; optionally write the chosen model to ``output``.

    Candidates that need the PyTorch model are listed as skipped when ``model`` is None.
    Raises ThresholdError when no candidate's p50 latency fits ``latency_budget_ms``.
    """
    if output is not None:
        check_output(output, force=force)
    if latency_budget_ms is not None and not latency_budget_ms > 0:
        raise ConfigError(f"latency budget must be a positive number of ms, got {latency_budget_ms}")
    if holdout <= 0:
        raise ConfigError(f"the sweep measures on held-out samples: holdout must be > 0, got {holdout}")
    candidates = tuple(candidates) if candidates is not None else default_candidates(base, qat=model is not None)
    if not candidates or len({c.name for c in candidates}) != len(candidates):
        raise ConfigError("sweep candidates must be a non-empty list with unique names")
    from tqdm import tqdm

    rows: list[SweepRow] = []
    eval_samples = 0
    with tempfile.TemporaryDirectory(prefix="edgesep-sweep-") as folder:
        for index, candidate in enumerate(tqdm(candidates, desc="sweep", unit="recipe", disable=not progress, leave=False)):
            if candidate.recipe.needs_torch_model and model is None:
                rows.append(SweepRow(candidate.name, candidate.recipe, skipped="needs the PyTorch model (--torch-model)"))
                continue
            path = Path(folder) / f"candidate{index}.tflite"
            result = quantize(
                model_path, path, recipe=candidate.recipe, model=model, weights=weights, calibration=calibration, holdout=holdout
            )
            inputs, labels = _held_out(result, model_path, calibration, holdout=holdout)
            accuracy, p50 = _measure(path, inputs, labels, runs=latency_runs)
            eval_samples = result.eval_samples
            rows.append(
                SweepRow(
                    candidate.name, result.recipe, result.fidelity.top1_agreement, result.fidelity.cosine, accuracy, p50, result.size_bytes
                )
            )
        chosen = choose(rows, latency_budget_ms=latency_budget_ms)
        written = None
        if output is not None:
            source = Path(folder) / f"candidate{[c.name for c in candidates].index(chosen)}.tflite"
            sidecar = read_sidecar(source)
            publish_model(output, lambda tmp: shutil.copyfile(source, tmp), sidecar, force=force)
            written = Path(output)
    return SweepResult(tuple(rows), chosen, latency_budget_ms, eval_samples, written)


def _p50(row: SweepRow) -> float:
    """The p50 latency of a measured (not skipped) row."""
    assert row.p50_ms is not None  # only skipped rows lack measurements
    return row.p50_ms


def choose(rows: Sequence[SweepRow], *, latency_budget_ms: float | None) -> str:
    """The name of the row with the highest agreement (then cosine) whose p50 fits the budget."""
    measured = [row for row in rows if row.skipped is None]
    if not measured:
        raise ConfigError("every sweep candidate was skipped (pass the PyTorch model, or other candidates)")
    within = [row for row in measured if latency_budget_ms is None or _p50(row) <= latency_budget_ms]
    if not within:
        fastest = min(_p50(row) for row in measured)
        raise ThresholdError(f"no recipe runs within the latency budget of {latency_budget_ms:g} ms (fastest p50: {fastest:.3f} ms)")
    best = max(within, key=lambda row: (-1.0 if row.top1_agreement is None else row.top1_agreement, row.cosine))
    return best.name


def _held_out(result, model_path, calibration, *, holdout: int):
    """The held-out NCHW inputs quantize measured on (same draw), and their labels if the source has them."""

    recipe = result.recipe
    specs = resolve(model_path).inputs
    source = open_source(calibration, preprocessing=recipe.preprocessing, input_shape=specs[0].shape)
    count = recipe.samples + holdout
    data = draw(source, specs, count=count, seed=recipe.seed, required=recipe.samples)
    start = recipe.samples if len(data) > recipe.samples else 0
    inputs = tuple(a[start:] for a in data.arrays)
    labels = getattr(source, "labels", None)
    if labels is None or not isinstance(source, IndexedSource) or data.skipped or start == 0:
        return inputs, None
    order = np.random.default_rng(recipe.seed).permutation(len(source))[:count]
    return inputs, np.asarray(labels)[order][start : len(data)]


def _measure(path: Path, inputs: tuple[np.ndarray, ...], labels, *, runs: int):
    """(accuracy or None, p50 ms of ``runs`` batch-1 runs) of the .tflite at ``path`` (1 thread)."""

    sidecar = read_sidecar(path)
    layouts = [tensor.layout for tensor in sidecar.inputs] if sidecar else [None] * len(inputs)
    feeds = [
        np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1))) if layout == "NHWC" and a.ndim == 4 else a for a, layout in zip(inputs, layouts)
    ]
    predictions, times = [], []
    with TfliteRunner(path, threads=1) as runner:
        names = list(runner.input_names)
        for n in range(len(feeds[0])):
            out = runner.infer({name: feed[n : n + 1] for name, feed in zip(names, feeds)})
            predictions.append(int(np.argmax(np.asarray(out[runner.output_names[0]]).reshape(-1))))
        first = {name: feed[:1] for name, feed in zip(names, feeds)}
        for _ in range(max(1, runs)):
            runner.infer(first)
            times.append(runner.last_inference_ms or 0.0)
    accuracy = None if labels is None or len(labels) != len(predictions) else float(np.mean(np.asarray(predictions) == labels))
    return accuracy, float(np.median(times))


@dataclass(frozen=True)
class SearchStep:
    """One recipe the target search tried: its task metric against float32 on the held-out samples."""

    name: str
    recipe: QuantRecipe
    auto_fallback: int
    metric_value: float
    latency_ms: float  # mean batch-1 latency on the held-out samples, 1 thread
    size_bytes: int
    partitions: int  # XNNPACK partitions of the int8 model

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "recipe": self.recipe.to_dict(), "auto_fallback": self.auto_fallback,
                "metric_value": self.metric_value, "latency_ms": self.latency_ms, "size_bytes": self.size_bytes,
                "partitions": self.partitions}  # fmt: skip


@dataclass(frozen=True)
class SearchResult:
    metric: str
    target: float
    steps: tuple[SearchStep, ...]  # in the order tried; the search stops at the first that meets the target
    float_latency_ms: float
    path: Path

    @property
    def met(self) -> bool:
        return self.steps[-1].metric_value >= self.target

    @property
    def chosen(self) -> SearchStep:
        """The first step that met the target, else the best one found."""
        return self.steps[-1] if self.met else max(self.steps, key=lambda step: step.metric_value)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "target": self.target, "met": self.met, "chosen": self.chosen.name,
                "float_latency_ms": self.float_latency_ms, "steps": [step.to_dict() for step in self.steps],
                "path": str(self.path)}  # fmt: skip


def search_candidates(base: QuantRecipe = QuantRecipe()) -> tuple[tuple[Candidate, int], ...]:
    """Cheapest first: per-channel ranges (min/max, percentile, MSE, entropy: same graph, same speed), MSE and percentile
    with the activations equalized on the ONNX graph (equalize_onnx.py: one onnxruntime pass on up to 64 samples;
    the same number of ops), then MSE + equalized with the stem kept float (FLOAT_ENDS: the first 2 % of the ops;
    about as fast, same partition), then the percentile model with 2, then 5 layers kept in float by the output
    metric (each float island costs time), then the percentile model with empirical bias correction of its int8
    biases (int8_bias.py: same graph and speed, but costly to make: float and int8 models run on the calibration
    samples once per level of weighted ops), then the percentile model with AdaRound of its int8 weights
    (adaround.py: same graph and speed; the costliest to make: one small optimization per weighted op)."""
    plain = replace(base, per_channel=True, equalize=False, bias_correction="none", activation_range="minmax", qat_epochs=0,
                    equalize_activations=False, weight_rounding="nearest")  # fmt: skip
    ranges = [(Candidate(f"per-channel {method}", replace(plain, activation_range=method)), 0)
              for method in ("minmax", "percentile", "mse", "entropy")]  # fmt: skip
    equalized = [(Candidate(f"per-channel {method} + equalized activations",
                            replace(plain, activation_range=method, equalize_activations=True)), 0)
                 for method in ("mse", "percentile")]  # fmt: skip
    ends = [(Candidate(FLOAT_ENDS_CANDIDATE, replace(plain, activation_range="mse", equalize_activations=True, float_ends=FLOAT_ENDS)), 0)]
    percentile = replace(plain, activation_range="percentile")
    fallbacks = [(Candidate(f"per-channel percentile + {count} float layers", percentile), count) for count in (2, 5)]
    corrected = [(Candidate(BIAS_CANDIDATE, replace(percentile, bias_correction="empirical")), 0),
                 (Candidate(ADAROUND_CANDIDATE, replace(percentile, weight_rounding="adaround")), 0)]  # fmt: skip
    return tuple(ranges + equalized + ends + fallbacks + corrected)


def search(
    model_path: str | Path,
    output: str | Path,
    *,
    calibration: Any,
    metric: str,
    target: float,
    base: QuantRecipe = QuantRecipe(),
    candidates: Sequence[tuple[Candidate, int]] | None = None,
    holdout: int = 50,
    input_shape: tuple[int, ...] | None = None,
    force: bool = False,
    progress: bool = False,
) -> SearchResult:
    """Quantize with each candidate (default :func:`search_candidates`), cheapest first, until ``metric``
    (:func:`~edgesep.quantize.sensitivity.task_metric`) against float32 on ``holdout`` held-out samples reaches
    ``target``; write that model to ``output`` (else the best one found) with what was tried in its sidecar
    (``search``). Raises ThresholdError after writing when no candidate meets the target."""

    task_metric(metric)  # an unknown metric fails before any work
    check_output(output, force=force)
    if holdout <= 0:
        raise ConfigError(f"the search measures on held-out samples: holdout must be > 0, got {holdout}")
    tried = tuple(candidates) if candidates is not None else search_candidates(base)
    steps: list[SearchStep] = []
    files: list[Path] = []
    float_ms = 0.0
    with tempfile.TemporaryDirectory(prefix="edgesep-search-") as folder:
        for index, (candidate, fallback) in enumerate(tried):
            if progress:
                print(f"search: trying {candidate.name} ...", flush=True)
            path = Path(folder) / f"candidate{index}.tflite"
            result = quantize(model_path, path, recipe=candidate.recipe, calibration=calibration, holdout=holdout,
                              input_shape=input_shape, auto_fallback=fallback, metric=metric)  # fmt: skip
            assert result.metric_value is not None
            float_ms = result.variants[0].latency_ms
            steps.append(SearchStep(candidate.name, result.recipe, fallback, result.metric_value, result.variants[-1].latency_ms,
                                    result.size_bytes, delegation(path).partitions))  # fmt: skip
            files.append(path)
            if result.metric_value >= target:
                break
        outcome = SearchResult(metric, float(target), tuple(steps), float_ms, Path(output))
        chosen = files[steps.index(outcome.chosen)]
        sidecar = read_sidecar(chosen)
        assert sidecar is not None  # quantize wrote it
        sidecar = replace(sidecar, extra={**sidecar.extra, "search": outcome.to_dict()})
        publish_model(output, lambda tmp: shutil.copyfile(chosen, tmp), sidecar, force=force)
    if not outcome.met:
        best = outcome.chosen
        raise ThresholdError(f"no recipe reached {metric} >= {target:g} on {holdout} held-out samples; wrote the best one, "
                             f"{best.name} ({best.metric_value:.4f}), to {output}")  # fmt: skip
    return outcome
