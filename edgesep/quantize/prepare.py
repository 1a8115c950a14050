"""The PyTorch half of a recipe: BN folding, cross-layer equalization, bias correction and QAT before export.

``prepare_for_int8(model, recipe, data=...)`` returns the model to export; the TFLite half
(``activation_range``) is applied between calibration and quantization by
:func:`edgesep.quantize.activation_ranges.apply_activation_ranges`.  Heavy (torch); import lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.errors import InputError, ToleranceError
from edgesep.export import export
from edgesep.export.step import DEFAULT_FACTORY
from edgesep.export.verify import verify_against_torch
from edgesep.models.loading import load_factory, load_weights
from edgesep.quantize.bias_correction import BiasCorrectionReport, correct_bias
from edgesep.quantize.equalize import EqualizeConfig, EqualizeReport, equalize
from edgesep.quantize.recipe import QuantRecipe


@dataclass(frozen=True)
class PreparedModel:
    model: Any  # torch.nn.Module, BN folded, in eval mode
    equalization: EqualizeReport | None
    bias_correction: BiasCorrectionReport | None
    qat: Any = None  # qat.QatReport when the recipe fine-tunes (qat.py imports torch at module level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "equalization": None if self.equalization is None else self.equalization.to_dict(),
            "bias_correction": None if self.bias_correction is None else self.bias_correction.to_dict(),
            "qat": None if self.qat is None else self.qat.to_dict(),
        }


def prepare_for_int8(
    model,
    recipe: QuantRecipe,
    *,
    data: np.ndarray | None = None,
    equalize_config: EqualizeConfig = EqualizeConfig(),
    progress: bool = False,
) -> PreparedModel:
    """Apply ``recipe.equalize``, ``recipe.bias_correction`` (weights simulated as ``recipe.per_channel`` int8) and
    ``recipe.qat_epochs`` of quantization-aware fine-tuning, in that order, to a copy of ``model``; ``data`` (NCHW
    float32 calibration samples) is needed for "empirical" and QAT.  QAT starts from the equalized, bias-corrected
    weights and distils from ``model`` itself (the float function the int8 model should match)."""
    report = None
    statistics = None
    source = model
    if recipe.equalize:
        model, report = equalize(model, config=equalize_config)
        statistics = report.statistics
    prepared, bias = correct_bias(model, recipe.bias_correction, per_channel=recipe.per_channel, data=data, statistics=statistics)
    qat = None
    if recipe.qat_epochs:
        from edgesep.quantize.qat import QatConfig, fine_tune

        config = QatConfig(epochs=recipe.qat_epochs, per_channel=recipe.per_channel, seed=recipe.seed)
        prepared, qat = fine_tune(prepared, data, teacher=source, config=config, progress=progress)
    return PreparedModel(prepared, report, bias if recipe.bias_correction != "none" else None, qat)


def load_torch_model(model, *, weights: str | Path | None = None):
    """An nn.Module as given, or built from a ``module:factory`` reference (``default``: the digits SepCNN)."""
    import torch

    if isinstance(model, str):
        model = load_factory(DEFAULT_FACTORY if model == "default" else model)
    elif not isinstance(model, torch.nn.Module):
        raise InputError(f"model must be an nn.Module or a 'module:factory' reference, got {type(model).__name__}")
    if weights is not None:
        load_weights(model, weights)
    return model.eval()


def export_prepared(
    model,
    onnx_path: str | Path,
    output: str | Path,
    *,
    recipe: QuantRecipe,
    data: np.ndarray,
    input_shape: tuple[int, ...],
    weights: str | Path | None = None,
    equalize_config: EqualizeConfig = EqualizeConfig(),
    progress: bool = False,
) -> PreparedModel:
    """Check that the PyTorch ``model`` computes ``onnx_path``, apply the recipe's PyTorch half, export it to ``output``.

    InputError when the PyTorch model is not the ONNX model's source (max-abs error above 1e-3 of the output scale).
    """

    module = load_torch_model(model, weights=weights)
    name = Path(onnx_path).name
    try:
        verify_against_torch(module, Path(onnx_path), tuple(input_shape), tolerance=1e-3, samples=2)
    except ToleranceError as error:
        raise InputError(f"the PyTorch model is not the source of {name}: {error}") from None
    except Exception as error:  # user model code, or onnxruntime on a mismatched input
        raise InputError(f"the PyTorch model cannot run on the input {tuple(input_shape)} of {name}: {type(error).__name__}") from None
    prepared = prepare_for_int8(module, recipe, data=np.asarray(data, np.float32), equalize_config=equalize_config, progress=progress)
    export(prepared.model, output, input_shape=tuple(input_shape), force=True)
    return prepared
