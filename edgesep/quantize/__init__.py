"""Post-training quantization of a converted model: int8 (calibrated), float16 and dynamic-range.

Light: TensorFlow is imported only when ``quantize`` runs.
"""

from edgesep.quantize.calibration import (
    ArraySource,
    CalibrationSource,
    DigitsSource,
    ImageFolderSource,
    open_source,
)
from edgesep.quantize.preprocessing import PreprocessingSpec
from edgesep.quantize.recipe import QuantRecipe

__all__ = [
    "ArraySource",
    "CalibrationSource",
    "DigitsSource",
    "ImageFolderSource",
    "PreprocessingSpec",
    "QuantRecipe",
    "open_source",
]
