"""The quantization recipe: a frozen description of how a model was quantized.

Saved as the ``recipe`` key of the quantized model's sidecar (``model.tflite.json``);
``QuantRecipe.from_dict(sidecar["recipe"])`` reproduces the run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from edgesep.errors import ConfigError
from edgesep.quantize.preprocessing import PreprocessingSpec

MODES = ("float16", "dynamic", "int8")  # least to most change: the order `edgesep run` quantizes and reports in
IO_TYPES = ("int8", "uint8", "float32")
BIAS_CORRECTIONS = ("none", "empirical", "analytic")  # edgesep.quantize.bias_correction
ACTIVATION_RANGES = ("minmax", "percentile", "mse", "entropy")  # edgesep.quantize.ranges
WEIGHT_ROUNDINGS = ("nearest", "adaround")  # edgesep.quantize.adaround


@dataclass(frozen=True)
class QuantRecipe:
    """``int8``: full-integer weights and activations calibrated on data; ``float16``: half weights;
    ``dynamic``: int8 weights, float activations (no calibration data).

    ``input_type``/``output_type`` only matter for ``int8``: ``float32`` keeps float I/O with
    quantize/dequantize ops at the edges.  ``keep_float`` names layers (output tensor names
    of the float TFLite model, as the analysis lists them) that stay in float.

    Separable-net remedies (docs/QUANTIZATION.md): ``equalize`` folds BN and equalizes weight ranges
    across layer pairs, ``bias_correction`` cancels the mean shift of int8 weights (both on the PyTorch
    model before export), ``activation_range`` picks how activation ranges come from calibration data,
    ``qat_epochs`` > 0 fine-tunes the PyTorch model that many epochs with fake int8 (qat.py) before export.
    ``equalize_activations`` scales the channels of the activations between convolution pairs (through
    HardSwish/ReLU) on the ONNX graph so that each fits its tensor's one int8 scale (equalize_onnx.py; any ONNX
    source, no PyTorch model). ``weight_rounding="adaround"`` learns the rounding of the int8 weights on the
    calibration data (on the int8 model, any source: adaround.py; before the empirical bias correction when both
    are asked for). ``float_ends=(head, tail)`` keeps in float the first ``head`` and the last ``tail`` fraction of
    the model's ops (execution order; ``engine.end_layers``): a stem at full resolution with few channels of very
    different ranges is where one int8 scale per tensor hurts most and costs least to skip; resolved to layer
    names in ``keep_float`` when the model is quantized.
    """

    mode: str = "int8"
    input_type: str = "float32"
    output_type: str = "float32"
    per_channel: bool = True
    samples: int = 300
    seed: int = 0
    keep_float: tuple[str, ...] = ()
    preprocessing: PreprocessingSpec | None = None
    equalize: bool = False
    bias_correction: str = "none"
    activation_range: str = "minmax"
    qat_epochs: int = 0
    equalize_activations: bool = False
    weight_rounding: str = "nearest"
    float_ends: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.bias_correction not in BIAS_CORRECTIONS:
            raise ConfigError(f"recipe bias_correction must be one of {', '.join(BIAS_CORRECTIONS)}, got {self.bias_correction!r}")
        if self.activation_range not in ACTIVATION_RANGES:
            raise ConfigError(f"recipe activation_range must be one of {', '.join(ACTIVATION_RANGES)}, got {self.activation_range!r}")
        if self.weight_rounding not in WEIGHT_ROUNDINGS:
            raise ConfigError(f"recipe weight_rounding must be one of {', '.join(WEIGHT_ROUNDINGS)}, got {self.weight_rounding!r}")
        object.__setattr__(self, "equalize", bool(self.equalize))
        object.__setattr__(self, "equalize_activations", bool(self.equalize_activations))
        if self.equalize_activations and self.mode != "int8":
            raise ConfigError(f"equalize_activations applies to mode 'int8' only, not {self.mode!r}")
        if not isinstance(self.qat_epochs, (int, float)) or isinstance(self.qat_epochs, bool) or self.qat_epochs % 1 or self.qat_epochs < 0:
            raise ConfigError(f"recipe qat_epochs must be a whole number >= 0, got {self.qat_epochs!r}")
        object.__setattr__(self, "qat_epochs", int(self.qat_epochs))
        if self.mode not in MODES:
            raise ConfigError(f"recipe mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("input_type", "output_type"):
            if getattr(self, name) not in IO_TYPES:
                raise ConfigError(f"recipe {name} must be one of {', '.join(IO_TYPES)}, got {getattr(self, name)!r}")
        if self.mode != "int8" and (self.input_type != "float32" or self.output_type != "float32"):
            raise ConfigError(f"integer model input/output types need mode 'int8', not {self.mode!r}")
        if self.mode != "int8" and self.keep_float:
            raise ConfigError("keep_float applies to mode 'int8' only")
        if self.mode != "int8" and self.weight_rounding != "nearest":
            raise ConfigError(f"weight_rounding {self.weight_rounding!r} applies to mode 'int8' only")
        if int(self.samples) <= 0:
            raise ConfigError(f"recipe samples must be positive, got {self.samples}")
        object.__setattr__(self, "samples", int(self.samples))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "per_channel", bool(self.per_channel))
        object.__setattr__(self, "keep_float", tuple(dict.fromkeys(str(n) for n in self.keep_float)))
        ends = tuple(self.float_ends)
        if len(ends) != 2 or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0.0 <= f <= 0.5 for f in ends):
            raise ConfigError(f"recipe float_ends must be two fractions (head, tail) in [0, 0.5], got {self.float_ends!r}")
        object.__setattr__(self, "float_ends", (float(ends[0]), float(ends[1])))
        if self.mode != "int8" and any(self.float_ends):
            raise ConfigError(f"float_ends applies to mode 'int8' only, not {self.mode!r}")

    @property
    def needs_calibration(self) -> bool:
        return self.mode == "int8"

    @property
    def needs_torch_model(self) -> bool:
        """Equalization, analytic bias correction and QAT act on the PyTorch model before export (empirical bias
        correction does too when one is given; without one it corrects the int8 TFLite model: int8_bias.py)."""
        return self.equalize or self.bias_correction == "analytic" or self.qat_epochs > 0

    def prepares_torch_model(self, torch_model: Any) -> bool:
        """Whether quantizing with this recipe prepares (and re-exports) the PyTorch model ``torch_model``."""
        return self.needs_torch_model or (self.bias_correction == "empirical" and torch_model is not None)

    def with_keep_float(self, names: tuple[str, ...] | list[str]) -> QuantRecipe:
        return replace(self, keep_float=tuple(names))

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        payload["keep_float"] = list(self.keep_float)
        payload["float_ends"] = list(self.float_ends)
        payload["preprocessing"] = None if self.preprocessing is None else self.preprocessing.to_dict()
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> QuantRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ConfigError(f"unknown recipe key(s) {unknown}; known: {sorted(known)}")
        values = dict(payload)
        if values.get("preprocessing") is not None:
            values["preprocessing"] = PreprocessingSpec.from_dict(values["preprocessing"])
        if "keep_float" in values:
            values["keep_float"] = tuple(values["keep_float"])
        if isinstance(values.get("float_ends"), list):
            values["float_ends"] = tuple(values["float_ends"])
        return cls(**values)
