"""The convert step: ONNX file -> verified float32 .tflite (+ sidecar JSON)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgesep.convert.loading import named_input_shapes, read_model, simplify
from edgesep.convert.lowering import lower
from edgesep.convert.tflite import to_tflite_bytes
from edgesep.convert.tflite_inspect import delegation, op_histogram
from edgesep.convert.verify import load_verify_data, verify_tflite
from edgesep.errors import ConfigError
from edgesep.fileio import check_output, publish_model
from edgesep.models.keras_loading import KERAS_FILE_SUFFIXES
from edgesep.numerics import DEFAULT_TOLERANCE, Fidelity
from edgesep.sidecar import Sidecar, TensorInfo


@dataclass(frozen=True)
class ConvertResult:
    path: Path
    source: str
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]  # in the TFLite model's layout
    input_layout: str  # "NHWC" or "NCHW"
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    fidelity: Fidelity
    op_histogram: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0
    seconds: float = 0.0
    runtime: dict[str, Any] = field(default_factory=dict)  # tflite_inspect.Delegation.to_dict(): XNNPACK partitions

    @property
    def transposes(self) -> int:
        return self.op_histogram.get("TRANSPOSE", 0)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["path"] = str(self.path)
        payload["transposes"] = self.transposes
        return payload


def convert(
    onnx_path: str | Path,
    output: str | Path,
    *,
    keep_nchw: bool = False,
    input_shape: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    samples: int = 4,
    seed: int = 0,
    verify_data: str | Path | None = None,
    force: bool = False,
) -> ConvertResult:
    """Convert an ONNX model (or a Keras/SavedModel) to a float32 TFLite model, verified vs onnxruntime.

    Verification runs on ``verify_data`` when given (a .npy for a single-input model, or a .npz with one
    array per input name; NCHW, samples on the first axis: your own representative inputs), else on
    image-like inputs (never plain noise, on which a detector's output is ~0).

    ``input_shape`` (ONNX layout, e.g. NCHW) fixes the only input's shape; ``{name: shape}`` fixes several.
    Dynamic dims (``dim_param``, empty, or <= 0) need it, except a dynamic batch (1).  The
    file and its ``<output>.json`` sidecar are written only if the TFLite
    outputs match onnxruntime within ``tolerance`` relative to the output scale.
    """
    source = Path(onnx_path)
    if source.is_dir() or source.suffix.lower() in KERAS_FILE_SUFFIXES:
        from edgesep.convert.keras import convert_keras

        onnx_only = [flag for flag, given in (("--keep-nchw", keep_nchw), ("--input-shape", input_shape is not None),
                                              ("--verify-data", verify_data is not None)) if given]  # fmt: skip
        if onnx_only:
            raise ConfigError(f"{source}: {', '.join(onnx_only)}: for ONNX input only (a Keras model has its own shapes)")
        return convert_keras(source, output, tolerance=tolerance, samples=samples, seed=seed, force=force)

    started = time.perf_counter()
    check_output(output, force=force, inputs=[source])
    model = read_model(source)
    shapes = named_input_shapes(model, input_shape)
    lowered = lower(simplify(model), keep_nchw=keep_nchw, input_shapes=shapes)
    model_bytes = to_tflite_bytes(lowered)
    data = None
    if verify_data is not None:
        data = load_verify_data(verify_data, lowered.input_names, lowered.onnx_input_shapes)
        samples = min(len(a) // shape[0] for a, shape in zip(data.values(), lowered.onnx_input_shapes))
    fidelity = verify_tflite(model, model_bytes, lowered, tolerance=tolerance, samples=samples, seed=seed, data=data)
    path = Path(output)
    result = ConvertResult(
        path=path,
        source=str(source),
        input_names=lowered.input_names,
        input_shapes=lowered.input_shapes,
        input_layout=lowered.input_layout,
        output_names=lowered.output_names,
        output_shapes=lowered.output_shapes,
        fidelity=fidelity,
        op_histogram=op_histogram(model_bytes),
        size_bytes=len(model_bytes),
        seconds=time.perf_counter() - started,
        runtime=delegation(model_bytes).to_dict(),
    )
    publish_model(path, lambda tmp: tmp.write_bytes(model_bytes), sidecar(result, lowered, samples=samples),
                  force=force, inputs=[source])  # fmt: skip
    return result


def sidecar(result: ConvertResult, lowered, *, samples: int) -> Sidecar:
    """The ``<model>.tflite.json`` record described in docs/ARCHITECTURE.md."""

    def layout_of(shape) -> str | None:
        return lowered.input_layout if len(shape) == 4 else None

    return Sidecar(
        format="tflite",
        source=result.source,
        inputs=tuple(
            TensorInfo(tuple(s), d, name=n, layout=layout_of(s))
            for n, s, d in zip(result.input_names, result.input_shapes, lowered.input_dtypes)
        ),
        outputs=tuple(
            TensorInfo(tuple(s), "float32", name=n, layout=layout_of(s)) for n, s in zip(result.output_names, result.output_shapes)
        ),
        onnx_input_layout="NCHW",
        verification={"reference": "onnxruntime", "samples": samples, **result.fidelity.to_dict()},
        runtime=result.runtime,
    )
