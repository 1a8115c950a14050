"""What the quantize step returns (:class:`QuantizeResult`) and the sidecar written next to its model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.numerics import Fidelity
from edgesep.quantize.analysis import LayerError
from edgesep.quantize.engine import interpreter
from edgesep.quantize.float_source import FloatSource
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.sensitivity import LayerSensitivity
from edgesep.sidecar import Sidecar, TensorInfo, TensorQuantization


@dataclass(frozen=True)
class Variant:
    """One model of the size/accuracy/latency trade-off (agreement is vs the float32 TFLite model)."""

    name: str
    keep_float: tuple[str, ...]
    size_bytes: int
    fidelity: Fidelity
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "keep_float": list(self.keep_float), "fidelity": self.fidelity.to_dict()}


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    source: str
    recipe: QuantRecipe  # as applied: preprocessing resolved, auto-fallback layers included in keep_float
    float_size_bytes: int
    size_bytes: int
    fidelity: Fidelity  # quantized vs float32 TFLite on the evaluation samples
    eval_samples: int
    held_out: bool  # evaluation samples were not used for calibration
    calibration: dict[str, Any] | None
    kernel_dtypes: dict[str, str]
    layers: tuple[LayerError, ...]  # per-layer error, worst first (with analyze/auto_fallback)
    variants: tuple[Variant, ...]  # float32, the written model, and the full-int8 model it was chosen over
    seconds: float
    prepared: dict[str, Any] | None = None  # what equalization / bias correction did (PreparedModel.to_dict())
    sensitivity: tuple[LayerSensitivity, ...] = ()  # auto-fallback candidates ranked by the output metric
    metric: str = "cosine"
    metric_value: float | None = None  # ``metric`` of the written model against float32 on the evaluation samples

    @property
    def size_ratio(self) -> float:
        return self.size_bytes / self.float_size_bytes if self.float_size_bytes else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": self.source,
            "recipe": self.recipe.to_dict(),
            "float_size_bytes": self.float_size_bytes,
            "size_bytes": self.size_bytes,
            "size_ratio": self.size_ratio,
            "fidelity": self.fidelity.to_dict(),
            "eval_samples": self.eval_samples,
            "held_out": self.held_out,
            "calibration": self.calibration,
            "kernel_dtypes": dict(self.kernel_dtypes),
            "layers": [layer.to_dict() for layer in self.layers],
            "variants": [variant.to_dict() for variant in self.variants],
            "seconds": self.seconds,
            "prepared": self.prepared,
            "metric": self.metric,
            "metric_value": self.metric_value,
            "sensitivity": [s.to_dict() for s in self.sensitivity],
        }


def quantized_sidecar(result: QuantizeResult, source: FloatSource, quant_bytes: bytes) -> Sidecar:
    """The int8/float16/dynamic model's sidecar: its source (ONNX or Keras), tensors, verification and recipe."""

    runner = interpreter(quant_bytes)

    def describe(detail: dict, *, layout: str | None) -> TensorInfo:
        shape = tuple(int(d) for d in detail["shape"])
        scale, zero_point = detail["quantization"]
        return TensorInfo(
            shape,
            np.dtype(detail["dtype"]).name,
            name=detail["name"],
            layout=layout if len(shape) == 4 else None,
            quantization=TensorQuantization(float(scale), int(zero_point)) if scale else None,
        )

    return Sidecar(
        format="tflite",
        source=str(source.model.onnx_path),
        inputs=tuple(describe(d, layout=source.input_layout) for d in runner.get_input_details()),
        outputs=tuple(describe(d, layout=None) for d in runner.get_output_details()),
        onnx_input_layout="NCHW" if source.source_format is None else None,
        source_format=source.source_format,
        verification={
            "reference": "float32 tflite",
            "cosine": result.fidelity.cosine,
            "top1_agreement": result.fidelity.top1_agreement,
            "max_abs": result.fidelity.max_abs,
            "samples": result.eval_samples,
            "held_out": result.held_out,
        },
        recipe=result.recipe.to_dict(),
        preprocessing=None if result.recipe.preprocessing is None else result.recipe.preprocessing.to_dict(),
        calibration=result.calibration,
        quantization={
            "float_size_bytes": result.float_size_bytes,
            "size_bytes": result.size_bytes,
            "kernel_dtypes": result.kernel_dtypes,
            "worst_layers": [layer.to_dict() for layer in result.layers[:5]],
            "sensitivity": {"metric": result.metric, "layers": [s.to_dict() for s in result.sensitivity]},
            "prepared": result.prepared,
        },
    )
