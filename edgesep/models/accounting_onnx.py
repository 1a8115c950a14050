"""Parameters and MACs of an ONNX file: Conv / Gemm / MatMul nodes, with shapes from onnx shape inference."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from edgesep.errors import InputError, ShapeError
from edgesep.fileio import check_input
from edgesep.models.accounting import LayerCount, ModelAccounting, find_pairs

_FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def count_onnx(path: str | os.PathLike, *, input_shape: Sequence[int] | None = None) -> ModelAccounting:
    """Account an ONNX model; ``input_shape`` fixes the first graph input (needed when it has symbolic dims)."""
    import onnx

    source = check_input(path, what="ONNX model")
    try:
        model = onnx.load(str(source))
    except Exception as error:  # protobuf decode errors have no common base
        raise InputError(f"cannot read {source} as an ONNX model: {type(error).__name__}") from error
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # ValidationError, or a protobuf error on a malformed field
        reason = " ".join(str(error).split())[:300] or type(error).__name__  # the checker's message spans lines
        raise InputError(f"{source} fails onnx.checker: {reason}") from None
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    canonical = {name: name for name in initializers}  # Identity aliases of a weight resolve to the weight
    for node in graph.node:  # weights stored as Constant nodes count like initializers
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            initializers[node.output[0]] = node.attribute[0].t
            canonical[node.output[0]] = node.output[0]
        elif node.op_type == "Identity" and node.input and node.input[0] in initializers:
            initializers[node.output[0]] = initializers[node.input[0]]
            canonical[node.output[0]] = canonical[node.input[0]]
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise InputError(f"{source} has no graph inputs")
    shape = _fix_input_shape(inputs[0], input_shape, source)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as error:
        raise InputError(f"onnx shape inference failed on {source}: {str(error).splitlines()[0]}") from error
    shapes = _value_shapes(inferred.graph)

    def tensor_shape(name: str) -> tuple[int, ...] | None:
        if name in initializers:
            return tuple(initializers[name].dims)
        return shapes.get(name)

    rows = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant" or (node.op_type == "Identity" and node.output[0] in canonical):
            continue
        own = {canonical[n] for n in node.input if _is_weight(initializers.get(n))}
        params = sum(_product(initializers[n].dims) for n in own)
        name = node.name or f"{node.op_type}_{index}"
        if node.op_type == "Conv":
            rows.append(_conv_row(node, name, params, tensor_shape))
        elif node.op_type in ("Gemm", "MatMul"):
            rows.append(_matmul_row(node, name, params, tensor_shape, initializers))
        elif params:
            rows.append(LayerCount(name=name, type=node.op_type, params=params, output_shape=shapes.get(node.output[0])))
    used = {canonical[n] for node in graph.node for n in node.input if _is_weight(initializers.get(n))}
    total_params = sum(_product(initializers[n].dims) for n in used)
    layers = tuple(rows)
    notes = ["ONNX export folds BatchNorm into the preceding conv's weights and bias"]
    if sum(layer.params for layer in layers) != total_params:
        notes.append("some initializers are shared between nodes; the total counts each stored tensor once")
    return ModelAccounting(
        source=str(source),
        format="onnx",
        input_shape=shape,
        layers=layers,
        pairs=find_pairs(layers, batch=shape[0]),
        total_params=total_params,
        total_macs=sum(layer.macs for layer in layers),
        notes=tuple(notes),
    )


def _is_weight(tensor) -> bool:
    """A float tensor with at least one dimension (scalars such as Clip bounds are not parameters)."""
    return tensor is not None and tensor.data_type in _FLOAT_TYPES and len(tensor.dims) > 0


def _fix_input_shape(value_info, input_shape, source: Path) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if input_shape is None:
        if any(d is None for d in declared[1:]):
            raise ShapeError(f"{source} input {value_info.name!r} has symbolic dims {declared}; pass --input-shape")
        shape = tuple(1 if d is None else d for d in declared)
    else:
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != len(declared) or any(d is not None and d != s for d, s in zip(declared, shape)):
            shown = tuple("?" if d is None else d for d in declared)
            raise ShapeError(f"input shape {shape} does not fit {source}: the model expects {shown}")
    for dim, size in zip(dims, shape):
        dim.Clear()
        dim.dim_value = size
    return shape


def _value_shapes(graph) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for info in list(graph.value_info) + list(graph.output) + list(graph.input):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = tuple(d.dim_value for d in dims)
    return shapes


def _attribute(node, name: str, default):
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _need(shape, node, what: str) -> tuple[int, ...]:
    if shape is None:
        raise ShapeError(f"cannot infer the {what} shape of {node.op_type} node {node.name!r}; pass --input-shape")
    return shape


def _product(values) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


def _conv_row(node, name: str, params: int, tensor_shape) -> LayerCount:
    weight = _need(tensor_shape(node.input[1]), node, "weight")
    output = _need(tensor_shape(node.output[0]), node, "output")
    groups = int(_attribute(node, "group", 1))
    out_channels, per_group = weight[0], weight[1]
    kernel = tuple(weight[2:])
    strides = tuple(_attribute(node, "strides", [1] * len(kernel)))
    return LayerCount(
        name=name,
        type="Conv",
        params=params,
        macs=_product(output) * _product(kernel) * per_group,
        kernel=kernel if len(kernel) == 2 else None,
        in_channels=per_group * groups,
        out_channels=out_channels,
        groups=groups,
        stride=strides if len(strides) == 2 else None,
        output_shape=output,
        weights=_product(weight),
    )


def _matmul_row(node, name: str, params: int, tensor_shape, initializers) -> LayerCount:
    a = _need(tensor_shape(node.input[0]), node, "input")
    b = _need(tensor_shape(node.input[1]), node, "second input")
    output = _need(tensor_shape(node.output[0]), node, "output")
    if node.op_type == "Gemm":
        inner = a[0] if _attribute(node, "transA", 0) else a[-1]
    else:
        inner = a[-1]
    weights = _product(b) if node.input[1] in initializers else 0
    return LayerCount(
        name=name,
        type=node.op_type,
        params=params,
        macs=_product(output) * inner,
        in_channels=inner,
        out_channels=output[-1],
        output_shape=output,
        weights=weights,
    )
