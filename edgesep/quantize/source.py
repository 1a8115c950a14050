"""Which ONNX model a quantize run starts from, and its NCHW inputs (read before any conversion)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgesep.convert.loading import check_numeric_inputs
from edgesep.errors import InputError, ShapeError
from edgesep.fileio import check_input, sidecar_path
from edgesep.quantize.calibration import InputSpec
from edgesep.sidecar import read_sidecar


@dataclass(frozen=True)
class SourceModel:
    """The ONNX file to lower, whether the TFLite model keeps NCHW, and the model's NCHW inputs."""

    onnx_path: Path
    keep_nchw: bool
    inputs: tuple[InputSpec, ...]
    given: Path  # what the user passed (.onnx or .tflite)


def resolve(model_path: str | Path, *, input_shape: tuple[int, ...] | None = None) -> SourceModel:
    """``model.onnx`` -> itself; an edgesep ``model.tflite`` -> the ONNX its sidecar names as ``source``."""
    given = check_input(model_path, what="model")
    keep_nchw = False
    if given.suffix.lower() == ".onnx":
        onnx_path = given
    elif given.suffix.lower() == ".tflite":
        onnx_path, keep_nchw = _onnx_behind(given)
    else:
        raise InputError(f"quantize takes a .onnx or an edgesep-converted .tflite model, got {given.name}")
    return SourceModel(onnx_path=onnx_path, keep_nchw=keep_nchw, inputs=onnx_inputs(onnx_path, input_shape=input_shape), given=given)


def _onnx_behind(tflite_path: Path) -> tuple[Path, bool]:
    hint = "quantize the ONNX model instead (edgesep quantize model.onnx ...)"
    meta = read_sidecar(tflite_path)
    if meta is None:
        raise InputError(f"{tflite_path.name} has no edgesep sidecar ({sidecar_path(tflite_path).name}) naming its ONNX source; {hint}")
    if meta.quantized:
        raise InputError(f"{tflite_path.name} is already quantized; {hint}")
    source = Path(meta.source)
    candidates = [source] if source.is_absolute() else [source, tflite_path.parent / source]
    found = next((c for c in candidates if c.suffix.lower() == ".onnx" and c.is_file()), None)
    if found is None:
        raise InputError(f"the ONNX source of {tflite_path.name} ({source or 'not recorded'}) is not available; {hint}")
    layouts = {str(t.layout or "").upper() for t in meta.inputs if len(t.shape) == 4}
    return found, layouts == {"NCHW"}


def onnx_inputs(onnx_path: Path, *, input_shape: tuple[int, ...] | None = None) -> tuple[InputSpec, ...]:
    """The graph's real inputs with static NCHW shapes (a dynamic batch becomes 1)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError and others
        raise InputError(f"{onnx_path} is not a readable ONNX model ({type(error).__name__})") from None
    initializers = {init.name for init in model.graph.initializer}
    values = [v for v in model.graph.input if v.name not in initializers]
    if not values:
        raise InputError(f"{onnx_path} has no inputs")
    check_numeric_inputs(model, onnx_path)
    specs = []
    for position, value in enumerate(values):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in value.type.tensor_type.shape.dim]
        if input_shape is not None and position == 0:
            shape = tuple(int(d) for d in input_shape)
            if len(shape) != len(dims) or any(d and d != s for d, s in zip(dims[1:], shape[1:])):
                raise ShapeError(f"input shape {shape} does not fit {value.name!r} of shape {tuple(dims)}")
        else:
            shape = tuple([1 if (i == 0 and d == 0) else d for i, d in enumerate(dims)])
        if any(d <= 0 for d in shape):
            raise ShapeError(f"input {value.name!r} has dynamic dimensions {tuple(dims)}; give input_shape (N,C,H,W)")
        specs.append(InputSpec(value.name, shape))
    return tuple(specs)
