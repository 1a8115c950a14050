"""What each pipeline step calls: the step functions of quantize and validate, fed from the config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgesep.pipeline.config import PipelineConfig
from edgesep.quantize import quantize
from edgesep.validate import validate_variants
from edgesep.validate.table import variant_rows


def calibration_inputs(config: PipelineConfig) -> list[Path]:
    """The files whose contents decide the int8 model (so that editing them re-runs quantize)."""
    source = config.calibration.source
    if source == "digits":
        return []
    path = config.resolve(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def run_quantize(
    config: PipelineConfig, onnx_path: Path, target: Path, *, mode: str, torch_model: Any = None, progress: bool = False
) -> dict[str, Any]:
    """``torch_model`` (the PyTorch model behind ``onnx_path``: a factory reference or an nn.Module)
    is needed only by equalization / bias correction."""

    source = config.calibration.source
    calibration = source if source == "digits" else str(config.resolve(source))
    recipe = config.quantize.recipe(mode, config.calibration)
    weights = config.resolve(config.model.weights) if isinstance(torch_model, str) and config.model.weights else None
    result = quantize(
        onnx_path,
        target,
        recipe=recipe,
        model=torch_model if recipe.prepares_torch_model(torch_model) else None,
        weights=weights if recipe.prepares_torch_model(torch_model) else None,
        calibration=calibration,  # float16/dynamic use it to measure agreement with float
        auto_fallback=config.quantize.auto_fallback if mode == "int8" else 0,
        progress=progress,
        force=True,
    )
    return json.loads(json.dumps(result.to_dict(), default=str))  # paths and tuples as JSON has them


def run_validate(
    config: PipelineConfig, device: str, float_path: Path, quantized: dict[str, Path], *, folder: Path
) -> list[dict[str, Any]]:
    """The float model and every quantized variant in one session on ``device``
    (:func:`edgesep.validate.step.validate_variants`): the summary rows, reports in ``folder/<mode>``."""

    section = config.validate
    reports = validate_variants(
        float_path,
        quantized,
        data=section.data if section.data == "digits" else str(config.resolve(section.data)),
        labels=str(config.resolve(section.labels)) if section.labels else None,
        device=device,
        spec=section.run_spec(),
        samples=section.samples,
        output_dir=folder,
        force=True,
    )
    return variant_rows(reports)
