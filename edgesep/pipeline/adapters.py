"""What each pipeline step calls: the step functions of quantize and validate, fed from the config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgesep.fileio import write_text
from edgesep.pipeline.config import PipelineConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def calibration_inputs(config: PipelineConfig) -> list[Path]:
    """The files whose contents decide the int8 model (so that editing them re-runs quantize)."""
    source = config.calibration.source
    if source == "digits":
        return []
    path = config.resolve(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def build_recipe(config: PipelineConfig, mode: str):
    from edgesep.quantize.preprocessing import PreprocessingSpec
    from edgesep.quantize.recipe import QuantRecipe

    section = config.quantize
    preprocessing = None
    if config.calibration.preprocessing is not None:
        preprocessing = PreprocessingSpec(**dataclasses.asdict(config.calibration.preprocessing))
    integer_io = mode == "int8"
    return QuantRecipe(
        mode=mode,
        input_type=section.input_type if integer_io else "float32",
        output_type=section.output_type if integer_io else "float32",
        per_channel=section.per_channel,
        samples=config.calibration.samples,
        seed=config.calibration.seed,
        keep_float=section.keep_float if integer_io else (),
        preprocessing=preprocessing,
        equalize=section.equalize if mode == "int8" else False,
        bias_correction=section.bias_correction if mode == "int8" else "none",
        activation_range=section.activation_range if mode == "int8" else "minmax",
    )


def run_quantize(config: PipelineConfig, onnx_path: Path, target: Path, *, mode: str,
                 torch_model: Any = None, progress: bool = False) -> dict[str, Any]:
    """``torch_model`` (the PyTorch model behind ``onnx_path``: a factory reference or an nn.Module)
    is needed only by equalization / bias correction."""
    from edgesep.quantize import quantize

    source = config.calibration.source
    calibration = source if source == "digits" else str(config.resolve(source))
    recipe = build_recipe(config, mode)
    weights = config.resolve(config.model.weights) if isinstance(torch_model, str) and config.model.weights else None
    result = quantize(
        onnx_path,
        target,
        recipe=recipe,
        model=torch_model if recipe.needs_torch_model else None,
        weights=weights if recipe.needs_torch_model else None,
        calibration=calibration,  # float16/dynamic use it to measure agreement with float
        auto_fallback=config.quantize.auto_fallback if mode == "int8" else 0,
        progress=progress,
        force=True,
    )
    return _jsonable(result.to_dict())


def run_validate(config: PipelineConfig, device: str, float_path: Path, quantized: dict[str, Path], *,
                 folder: Path, progress: bool) -> list[dict[str, Any]]:
    """Run the float model and every quantized variant in ONE device session on the same inputs.

    One session means one float baseline that every variant is compared with (same latency
    reference for every speed-up), and the inputs are pushed once.  Each variant also gets
    the per-pair report of ``edgesep validate`` in ``folder/<mode>``.
    """
    from edgesep.devices import open_device
    from edgesep.devices.base import RunSpec
    from edgesep.validate.comparison import compare_runs
    from edgesep.validate.data import load_validation_data, model_input
    from edgesep.validate.report import write_report
    from edgesep.validate.step import ValidationReport

    section = config.validate
    spec = RunSpec(runs=section.runs, warmup=section.warmup, threads=section.threads)
    data = section.data if section.data == "digits" else str(config.resolve(section.data))
    labels = str(config.resolve(section.labels)) if section.labels else None
    reference = next(iter(quantized.values()), float_path)  # its sidecar carries the preprocessing spec
    batch = load_validation_data(data, reference, labels=labels, samples=section.samples)
    shapes = {tag: model_input(path).shape[1:] for tag, path in {"float32": float_path, **quantized}.items()}
    mismatched = sorted(tag for tag, shape in shapes.items() if tuple(shape) != tuple(batch.x.shape[1:]))
    if mismatched:
        from edgesep.errors import ShapeError

        raise ShapeError(f"validation data {batch.x.shape[1:]} does not fit {', '.join(mismatched)} {shapes}")
    dev = open_device(device)
    models = {"float32": float_path, **quantized}
    runs = dev.run(models, batch.x, folder, spec=spec, force=True)
    baseline_run = runs["float32"]
    rows: list[dict[str, Any]] = []
    for mode in quantized:
        comparison = compare_runs(baseline_run, runs[mode], labels=batch.labels)
        if not rows:
            rows.append(_row(device, "float32", comparison.baseline, baseline=comparison.baseline))
        rows.append(_row(device, mode, comparison.candidate, baseline=comparison.baseline, comparison=comparison))
        report = ValidationReport(
            float_model=float_path, quant_model=quantized[mode], data=batch.source, samples=batch.samples,
            device=device, runs=spec.runs, warmup=spec.warmup, threads=spec.threads, comparison=comparison,
        )
        latencies = {"float32": baseline_run.latencies_ms, mode: runs[mode].latencies_ms}
        write_report(report, folder / mode, latencies=latencies, force=True)
    return rows


def _row(device: str, variant: str, summary, *, baseline, comparison=None) -> dict[str, Any]:
    p50 = summary.latency.p50 if summary.latency is not None else None
    base_p50 = baseline.latency.p50 if baseline.latency is not None else None
    agreement = comparison.agreement if comparison is not None else None
    return {
        "device": device,
        "variant": variant,
        "model": summary.model_name,
        "size_kb": summary.size_bytes / 1024,
        "accuracy": None if summary.top1 is None else 100 * summary.top1,
        "top5": None if summary.top5 is None else 100 * summary.top5,
        "agreement": 100.0 if comparison is None else (
            None if agreement is None or agreement.top1_agreement is None else 100 * agreement.top1_agreement),
        "cosine": 1.0 if comparison is None else (None if agreement is None else agreement.cosine),
        "max_abs": 0.0 if comparison is None else (None if agreement is None else agreement.max_abs),
        "p50_ms": p50,
        "p90_ms": summary.latency.p90 if summary.latency is not None else None,
        "speedup": (base_p50 / p50) if p50 and base_p50 else None,
        "accuracy_drop_pp": None if comparison is None else comparison.accuracy_drop_pp,
        "samples": summary.samples,
        "emulated": bool(summary.emulated),
        "complete": bool(summary.complete),
    }


def write_pipeline_report(output: Path, rows: list[dict[str, Any]]) -> Path:
    """report.md + report.html with the summary table and an accuracy-vs-latency plot of every variant."""
    plot = _accuracy_latency_plot(output, rows)
    headers = ["device", "model", "size KB", "accuracy %", "top-1 agreement %", "cosine", "p50 ms", "speed-up"]
    keys = ["device", "variant", "size_kb", "accuracy", "agreement", "cosine", "p50_ms", "speedup"]
    formats = ["{}", "{}", "{:.1f}", "{:.2f}", "{:.2f}", "{:.5f}", "{:.3f}", "{:.2f}x"]
    body = [[("-" if r.get(k) is None else f.format(r[k])) for k, f in zip(keys, formats)] for r in rows]
    emulated = sorted({r["device"] for r in rows if r.get("emulated")})
    lines = ["# edgesep run", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    if emulated:
        lines += ["", f"Latency on {', '.join(emulated)} is **EMULATED** (qemu): not the speed of the real board."]
    lines += ["", "Per-variant reports (latency histograms, device facts): `validate/<device>/<mode>/report.md`."]
    if plot is not None:
        lines += ["", f"![accuracy vs latency]({plot.name})"]
    markdown = "\n".join(lines) + "\n"
    write_text(output / "report.md", markdown, force=True)
    html_rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cells in body)
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgesep run</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 10px;border-bottom:1px solid #ddd}</style></head>"
        "<body><h1>edgesep run</h1><table><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"
        + html_rows + "</table>"
        + (f"<p><b>EMULATED</b> latency on {', '.join(emulated)}: not the speed of the real board.</p>" if emulated else "")
        + (f"<img src='{plot.name}' alt='accuracy vs latency'>" if plot is not None else "")
        + "</body></html>\n"
    )
    write_text(output / "report.html", html, force=True)
    return output / "report.md"


def _accuracy_latency_plot(output: Path, rows: list[dict[str, Any]]) -> Path | None:
    points = [r for r in rows if r.get("p50_ms") is not None and r.get("accuracy") is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for row in points:
        axes.scatter(row["p50_ms"], row["accuracy"])
        axes.annotate(f"{row['variant']} ({row['device']})", (row["p50_ms"], row["accuracy"]), fontsize=8)
    axes.set_xlabel("p50 latency (ms)" + (" [emulated]" if any(r.get("emulated") for r in points) else ""))
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title("accuracy vs latency")
    axes.grid(True, alpha=0.3)
    path = output / "accuracy_vs_latency.png"
    tmp = output / ".accuracy_vs_latency.png.tmp"
    figure.tight_layout()
    figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    tmp.replace(path)
    return path


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
