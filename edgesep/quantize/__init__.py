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
from edgesep.quantize.result import QuantizeResult, Variant
from edgesep.quantize.step import quantize

__all__ = [
    "ArraySource",
    "CalibrationSource",
    "DigitsSource",
    "ImageFolderSource",
    "PreprocessingSpec",
    "QuantRecipe",
    "QuantizeResult",
    "Variant",
    "open_source",
    "quantize",
]

from edgesep._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, "quantize")
