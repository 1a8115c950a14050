"""The validate step: run a float and a quantized model on a device with the same inputs and compare them."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.devices.base import DeviceRunError, RunSpec
from edgesep.devices.registry import named_device
from edgesep.errors import DeviceError, EdgesepError, InputError, OutputExistsError, ShapeError, ThresholdError
from edgesep.fileio import check_input, check_output_folder
from edgesep.results import RunResults, results_paths
from edgesep.validate.comparison import Comparison, compare_runs
from edgesep.validate.data import ModelInput, ValidationData, labels_only, load_validation_data, model_input, to_model_layout
from edgesep.validate.report import REPORT_FILES, write_report
from edgesep.validate.table import BASELINE_VARIANT

FLOAT_TAG = "float"
QUANT_TAG = "quant"
STAGES = ("loading data", "running on the device", "comparing", "writing the report")


@dataclass(frozen=True)
class ValidationReport:
    """Float vs quantized on one device: the comparison plus where everything came from and went."""

    float_model: Path
    quant_model: Path
    data: str
    samples: int
    device: str
    runs: int
    warmup: int
    threads: int | None
    comparison: Comparison
    results_files: tuple[Path, ...] = ()  # empty when no output_dir was given
    report_files: tuple[Path, ...] = ()  # report.md, report.html and the PNGs
    results: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # tag -> RunResults, not in JSON

    @property
    def accuracy_drop_pp(self) -> float | None:
        return self.comparison.accuracy_drop_pp

    def to_dict(self) -> dict[str, Any]:
        comparison = self.comparison.to_dict()
        comparison["device_facts"] = comparison.pop("device")
        return {
            "float_model": str(self.float_model),
            "quant_model": str(self.quant_model),
            "data": self.data,
            "labels": "none" if self.comparison.baseline.top1 is None else "given",
            "samples": self.samples,
            "device": self.device,
            "runs": self.runs,
            "warmup": self.warmup,
            "threads": self.threads,
            **comparison,
            "results_files": [str(p) for p in self.results_files],
            "report_files": [str(p) for p in self.report_files],
        }


def _nchw(x: np.ndarray, layout: str) -> np.ndarray:
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 and layout == "NHWC" else x


def _inputs_for(data: ValidationData, quant_input: ModelInput, float_input: ModelInput) -> np.ndarray:
    """The float model's batch: the same samples, in the float model's layout."""
    if tuple(float_input.shape[1:]) == tuple(data.x.shape[1:]):
        return data.x
    try:
        return to_model_layout(_nchw(data.x, quant_input.layout), float_input)
    except ShapeError:
        raise ShapeError(f"float model input {float_input.shape} and quantized model input {quant_input.shape} do not match") from None


def _run_pair(
    dev, float_model: Path, quant_model: Path, float_x: np.ndarray, quant_x: np.ndarray, results_dir: Path, *, spec, force: bool
) -> dict:
    if float_x is quant_x:  # one run: the inputs are pushed once
        return dev.run({FLOAT_TAG: float_model, QUANT_TAG: quant_model}, quant_x, results_dir, spec=spec, force=force)
    results = dict(dev.run({FLOAT_TAG: float_model}, float_x, results_dir, spec=spec, force=force))
    try:
        results.update(dev.run({QUANT_TAG: quant_model}, quant_x, results_dir, spec=spec, force=force))
    except DeviceRunError as error:
        error.results = {**results, **error.results}
        raise
    return results


def check_accuracy_drop(report: ValidationReport, max_drop_pp: float) -> None:
    """ThresholdError when the quantized model lost more than ``max_drop_pp`` top-1 points."""
    drop = report.accuracy_drop_pp
    if drop is None:
        why = ("labels (data with labels or --labels)" if report.comparison.agreement is not None
               else "model outputs (this device measured latency only)")  # fmt: skip
        raise InputError(f"--fail-if-drop needs {why}")
    base_top1, cand_top1 = report.comparison.baseline.top1, report.comparison.candidate.top1
    assert base_top1 is not None and cand_top1 is not None  # a drop is only computed from both accuracies
    check_drop(drop, max_drop_pp, baseline_pct=100 * base_top1, candidate_pct=100 * cand_top1)


def check_drop(
    drop_pp: float, max_drop_pp: float, *, baseline_pct: float, candidate_pct: float, subject: str = "quantized", where: str = ""
) -> None:
    """The ``--fail-if-drop`` gate of ``edgesep validate`` and ``edgesep run``: ThresholdError above the limit."""
    if drop_pp > max_drop_pp:
        raise ThresholdError(
            f"{subject} top-1 accuracy dropped {drop_pp:.2f} pp "
            f"({baseline_pct:.2f}% -> {candidate_pct:.2f}%), "
            f"more than the allowed {max_drop_pp:g} pp{where}"
        )


def validate(
    float_model: str | Path,
    quant_model: str | Path,
    *,
    data: str | Path,
    labels: str | Path | np.ndarray | None = None,
    device="local",
    spec=None,
    samples: int | None = None,
    output_dir: str | Path | None = None,
    report: bool = True,
    fail_if_drop: float | None = None,
    force: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Run both models on ``device`` (a name/URL or a Device) with the same inputs and compare them.

    Results files go to ``output_dir`` (and a Markdown/HTML report with plots when
    ``report``); without ``output_dir`` they live in a temporary folder and nothing
    is written.  ``fail_if_drop`` (percentage points of top-1) raises ThresholdError
    after everything is written.  ``on_stage`` is called with the name of each
    stage as it starts (see :data:`STAGES`), for progress bars.
    """
    stage = on_stage or (lambda name: None)
    float_model, quant_model = Path(float_model), Path(quant_model)
    for path in (float_model, quant_model):
        check_input(path, what="model")
    if output_dir is not None:
        check_output_folder(output_dir, create=False)  # a file in the way fails now, not after the device run
    spec = spec or RunSpec()
    stage(STAGES[0])
    quant_input, float_input = model_input(quant_model), model_input(float_model)
    batch = load_validation_data(data, quant_model, labels=labels, samples=samples)
    float_x = _inputs_for(batch, quant_input, float_input)
    device_name, dev = named_device(device)

    with tempfile.TemporaryDirectory(prefix="edgesep-validate-") as scratch:
        results_dir = Path(output_dir) if output_dir is not None else Path(scratch)
        if output_dir is not None and report and not force:
            refuse_existing_report(results_dir)
        stage(STAGES[1])
        context = dict(
            float_model=float_model, quant_model=quant_model, data=batch.source, samples=batch.samples,
            device=device_name, runs=spec.runs, warmup=spec.warmup, threads=spec.threads,
        )  # fmt: skip
        try:
            runs = _run_pair(dev, float_model, quant_model, float_x, batch.x, results_dir, spec=spec, force=force)
        except DeviceError as error:
            _partial_report(error, context, batch, output_dir=output_dir if report else None)
            raise
        stage(STAGES[2])
        result = ValidationReport(
            **context,
            comparison=compare_runs(runs[FLOAT_TAG], runs[QUANT_TAG], labels=batch.labels),
            results_files=_results_files(results_dir) if output_dir is not None else (),
            results=dict(runs),
        )
    if output_dir is not None and report:
        stage(STAGES[3])
        result = _with_report(result, Path(output_dir), force=force)
    if fail_if_drop is not None:
        check_accuracy_drop(result, fail_if_drop)
    return result


def validate_variants(
    float_model: Path,
    variants: Mapping[str, Path],
    *,
    data: str | Path,
    output_dir: Path,
    labels: str | Path | None = None,
    device="local",
    spec=None,
    samples: int | None = None,
    force: bool = False,
) -> tuple[ValidationReport, ...]:
    """The float model and every variant (tag -> .tflite) in ONE device session on the same inputs.

    One session means one float baseline (tag ``float32``) that every variant is compared with
    (the same latency reference for every speed-up), and the inputs are pushed once.  Results
    files go to ``output_dir``; each variant's report (as :func:`validate` writes it) to
    ``output_dir/<tag>``.  Returns one report per variant, in order.
    """
    spec = spec or RunSpec()
    reference = next(iter(variants.values()), float_model)  # its sidecar carries the preprocessing spec
    batch = load_validation_data(data, reference, labels=labels, samples=samples)
    models = {BASELINE_VARIANT: float_model, **variants}
    shapes = {tag: model_input(path).shape[1:] for tag, path in models.items()}
    mismatched = sorted(tag for tag, shape in shapes.items() if tuple(shape) != tuple(batch.x.shape[1:]))
    if mismatched:
        raise ShapeError(f"validation data {batch.x.shape[1:]} does not fit {', '.join(mismatched)} {shapes}")
    device_name, dev = named_device(device)
    runs = dev.run(models, batch.x, output_dir, spec=spec, force=force)
    reports = []
    for tag, path in variants.items():
        report = ValidationReport(
            float_model=float_model, quant_model=path, data=batch.source, samples=batch.samples,
            device=device_name, runs=spec.runs, warmup=spec.warmup, threads=spec.threads,
            comparison=compare_runs(runs[BASELINE_VARIANT], runs[tag], labels=batch.labels),
            results={BASELINE_VARIANT: runs[BASELINE_VARIANT], tag: runs[tag]},
        )  # fmt: skip
        reports.append(_with_report(report, output_dir / tag, force=force))
    return tuple(reports)


def compare_results(
    results_dir: str | Path,
    *,
    data: str | Path | None = None,
    labels: str | Path | None = None,
    output_dir: str | Path | None = None,
    report: bool = True,
    force: bool = False,
) -> ValidationReport:
    """Compare ``float``/``quant`` results files already measured (e.g. pulled from a Pi) without running anything.

    Labels come from ``labels`` or from ``data`` ('digits' or a .npz with ``y``), cut to the samples run.
    """
    folder = Path(results_dir)
    runs = {tag: RunResults.load(results_paths(folder, tag)[0]) for tag in (FLOAT_TAG, QUANT_TAG)}
    samples = max(run.samples for run in runs.values())
    y = None
    if data is not None or labels is not None:
        y = labels_only(data if data is not None else "", labels=labels)
        if y is not None and y.shape[0] < samples:
            raise ShapeError(f"{samples} samples were run but only {y.shape[0]} labels were given")
        y = None if y is None else y[:samples]
    facts = runs[QUANT_TAG].device
    result = ValidationReport(
        float_model=Path(runs[FLOAT_TAG].model_name),
        quant_model=Path(runs[QUANT_TAG].model_name),
        data=str(data) if data is not None else "(results files)",
        samples=samples,
        device=str(facts.get("hostname") or facts.get("machine") or folder.name),
        runs=len(runs[QUANT_TAG].latencies_ms),
        warmup=runs[QUANT_TAG].warmup,
        threads=runs[QUANT_TAG].threads,
        comparison=compare_runs(runs[FLOAT_TAG], runs[QUANT_TAG], labels=y),
        results_files=_results_files(folder),
        results=runs,
    )
    if output_dir is not None and report:
        if not force:
            refuse_existing_report(Path(output_dir))
        result = _with_report(result, Path(output_dir), force=force)
    return result


def _with_report(result: ValidationReport, folder: Path, *, force: bool) -> ValidationReport:
    latencies = {tag: run.latencies_ms for tag, run in result.results.items()}
    files = write_report(result, folder, latencies=latencies, force=force)
    return dataclasses.replace(result, report_files=files)


def _partial_report(error, context: dict, batch: ValidationData, *, output_dir: str | Path | None) -> None:
    """After a failed run: a report of what was measured (marked INCOMPLETE), when both models got that far."""
    partial = getattr(error, "results", None) or {}
    if output_dir is None or FLOAT_TAG not in partial or QUANT_TAG not in partial:
        return
    try:
        comparison = compare_runs(partial[FLOAT_TAG], partial[QUANT_TAG], labels=batch.labels)
        result = ValidationReport(**context, comparison=comparison, results=dict(partial))
        _with_report(result, Path(output_dir), force=True)
    except EdgesepError:  # the run's own error is the one to report
        return
    error.args = (f"{error}; partial report written to {Path(output_dir) / 'report.md'}",)


def _results_files(folder: Path) -> tuple[Path, ...]:
    files = [p for tag in (FLOAT_TAG, QUANT_TAG) for p in results_paths(folder, tag)]
    return tuple(p for p in files if p.exists())


def refuse_existing_report(folder: Path) -> None:
    existing = [name for name in REPORT_FILES if (folder / name).exists()]
    if existing:
        raise OutputExistsError(f"report exists in {folder}: {', '.join(existing)}; pass --force to overwrite")
