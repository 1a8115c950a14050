"""The PyTorch half of a recipe: BN folding, cross-layer equalization and bias correction before export.

``prepare_for_int8(model, recipe, data=...)`` returns the model to export; the TFLite half
(``activation_range``) is applied between calibration and quantization by
:func:`edgesep.quantize.activation_ranges.apply_activation_ranges`.  Heavy (torch); import lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesep.quantize.bias_correction import BiasCorrectionReport, correct_bias
from edgesep.quantize.equalize import EqualizeConfig, EqualizeReport, equalize
from edgesep.quantize.recipe import QuantRecipe


@dataclass(frozen=True)
class PreparedModel:
    model: Any  # torch.nn.Module, BN folded, in eval mode
    equalization: EqualizeReport | None
    bias_correction: BiasCorrectionReport | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "equalization": None if self.equalization is None else self.equalization.to_dict(),
            "bias_correction": None if self.bias_correction is None else self.bias_correction.to_dict(),
        }


def prepare_for_int8(
    model,
    recipe: QuantRecipe,
    *,
    data: np.ndarray | None = None,
    equalize_config: EqualizeConfig = EqualizeConfig(),
) -> PreparedModel:
    """Apply ``recipe.equalize`` and ``recipe.bias_correction`` (weights simulated as ``recipe.per_channel``
    int8) to a copy of ``model``; ``data`` (NCHW float32 calibration samples) is needed for "empirical"."""
    report = None
    statistics = None
    if recipe.equalize:
        model, report = equalize(model, config=equalize_config)
        statistics = report.statistics
    prepared, bias = correct_bias(
        model, recipe.bias_correction, per_channel=recipe.per_channel, data=data, statistics=statistics
    )
    return PreparedModel(prepared, report, bias if recipe.bias_correction != "none" else None)
