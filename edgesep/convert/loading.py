"""Read an ONNX file, fix its input shapes, check it and (optionally) constant-fold it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edgesep.errors import InputError, ShapeError
from edgesep.fileio import check_input


def read_model(path: str | Path):
    """Parse an ONNX file; a missing, corrupt or non-ONNX file is a one-line InputError."""
    import onnx

    source = check_input(path, what="ONNX model")
    try:
        model = onnx.load(str(source))
    except Exception as error:  # protobuf raises DecodeError, onnx may raise others
        raise InputError(f"{source} is not a readable ONNX model ({type(error).__name__})") from None
    if not model.graph.node and not model.graph.output:
        raise InputError(f"{source} is not an ONNX model (empty graph)")
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        reason = " ".join(str(error).split())[:300] or type(error).__name__  # the checker's message spans lines
        raise InputError(f"{source} fails onnx.checker: {reason}") from None
    check_numeric_inputs(model, source)
    return model


# ONNX element types edgesep can feed, compare and quantize: floats and integers (not string, bool, complex,
# float8 or 4-bit types, whose "verification" by max-abs/cosine would mean nothing)
NUMERIC_ONNX_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 16})


def check_numeric_inputs(model, source: str | Path) -> None:
    """Refuse a model with a non-numeric input (a string or bool tensor...): one line naming it and its dtype."""
    import onnx

    for value in graph_inputs(model):
        elem_type = value.type.tensor_type.elem_type
        if elem_type not in NUMERIC_ONNX_TYPES:
            kind = value.type.WhichOneof("value")
            name = onnx.TensorProto.DataType.Name(elem_type).lower() if kind == "tensor_type" else kind
            raise InputError(
                f"input {value.name!r} of {source} has dtype {name}; edgesep converts, quantizes and verifies "
                "models with numeric (float or integer) inputs only"
            )


def graph_inputs(model) -> list:
    """The real inputs of the graph (initializers listed as inputs are not inputs)."""
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def prepare_model(model, *, input_shapes: Mapping[str, tuple[int, ...]] | None = None):
    """Return a copy with static input shapes and inferred intermediate shapes.

    A dimension is dynamic when it has a ``dim_param``, no value, or a value <= 0 (Paddle2ONNX writes -1).
    A dynamic batch dimension becomes 1; any other dynamic dimension needs an explicit shape
    (``--input-shape``) and raises ShapeError.
    """
    import onnx

    prepared = onnx.ModelProto()
    prepared.CopyFrom(model)
    shapes = dict(input_shapes or {})
    inputs = graph_inputs(prepared)
    unknown = set(shapes) - {value.name for value in inputs}
    if unknown:
        raise ShapeError(f"input shape given for unknown input(s) {sorted(unknown)}; inputs: {[v.name for v in inputs]}")
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        if value.name in shapes:
            wanted = tuple(int(d) for d in shapes[value.name])
            if len(wanted) != len(dims):
                raise ShapeError(f"input {value.name!r} has rank {len(dims)}, but the shape given is {wanted}")
            for dim, size in zip(dims, wanted):
                declared = dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None
                if declared is not None and declared != size:
                    raise ShapeError(f"input {value.name!r} is fixed to {_dims_text(dims)}; cannot use {wanted}")
                dim.Clear()
                dim.dim_value = size
            continue
        for index, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if index == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            raise ShapeError(
                f"input {value.name!r} has dynamic dimensions {_dims_text(dims)}; pass a static shape with "
                f"--input-shape (e.g. 1,3,224,224, or {value.name}:1,3,224,224 for one of several inputs)"
            )
    for value in inputs:
        _check_size(value)
    _clear_value_info(prepared)
    try:
        prepared = onnx.shape_inference.infer_shapes(prepared, strict_mode=False, data_prop=True)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ShapeError(f"shape inference failed with the given input shapes: {first}") from None
    return prepared


MAX_INPUT_BYTES = 1 << 30  # 1 GiB per input: far beyond any edge model's, far below what breaks the host


def _check_size(value) -> None:
    """Refuse an input shape whose single tensor would need more than MAX_INPUT_BYTES, before anything is
    allocated (1x1x100000x100000 float32 is 37 GiB)."""
    import onnx

    dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).itemsize
    size = itemsize
    for dim in dims:
        size *= max(int(dim), 1)
    if size > MAX_INPUT_BYTES:
        raise ShapeError(
            f"input {value.name!r} of shape {tuple(dims)} would need {size / 2**30:.1f} GiB per sample "
            f"(limit {MAX_INPUT_BYTES / 2**30:.0f} GiB): pass a smaller --input-shape"
        )


def simplify(model):
    """Constant-fold with onnxslim; the model is returned unchanged if slimming fails."""
    try:
        import onnxslim
    except ImportError:
        return model
    try:
        return onnxslim.slim(model)
    except Exception:  # a simplifier failure must not fail the conversion
        return model


def _clear_value_info(model) -> None:
    """Drop stale intermediate shapes (e.g. a symbolic batch) so inference recomputes them."""
    del model.graph.value_info[:]
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")


def _dims_text(dims) -> str:
    return "(" + ", ".join(str(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?") for d in dims) + ")"


def named_input_shapes(model, shapes) -> dict[str, tuple[int, ...]] | None:
    """``--input-shape`` values -> {input name: shape}: a bare shape names the only input; a mapping is
    checked against the graph's inputs."""
    if shapes is None:
        return None
    inputs = [value.name for value in graph_inputs(model)]
    if not isinstance(shapes, Mapping):
        if len(inputs) != 1:
            raise InputError(f"the model has {len(inputs)} inputs ({', '.join(inputs)}): give each one as NAME:N,C,H,W")
        return {inputs[0]: tuple(int(d) for d in shapes)}
    unknown = sorted(set(shapes) - set(inputs))
    if unknown:
        raise InputError(f"--input-shape names unknown input {unknown[0]!r}; the inputs are {', '.join(inputs)}")
    return {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}
