"""ONNX graph -> a TF concrete function with 4-D activations in NHWC.

Each node is lowered by the handler registered for its op type (see
``edgesep/convert/ops``).  Nodes whose inputs are all constants are folded with
the ONNX reference evaluator, so Shape/Gather/Cast/Concat chains never reach TF.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgesep.convert.fusions import fuse_hardswish
from edgesep.convert.interface import input_key, output_key
from edgesep.convert.layout import Layout, Value, as_nhwc, as_plain
from edgesep.convert.loading import graph_inputs, prepare_model
from edgesep.convert.registry import get_handler, supported_ops
from edgesep.errors import ShapeError, UnsupportedOpError


@dataclass(frozen=True)
class Node:
    """An ONNX node with its attributes decoded to Python values."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    proto: Any = field(repr=False, compare=False)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)


@dataclass(frozen=True)
class LoweredModel:
    """A TF concrete function computing the ONNX graph, in the TFLite model's I/O layout."""

    concrete_function: Any
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]  # in the TFLite model's layout
    input_layout: str  # "NHWC" or "NCHW" (of the 4-D inputs)
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]  # in the TFLite model's layout
    onnx_input_shapes: tuple[tuple[int, ...], ...]  # NCHW, as in the ONNX graph
    input_dtypes: tuple[str, ...] = ()
    module: Any = field(default=None, repr=False, compare=False)  # keeps the function's trackables alive

    def to_tflite_input(self, index: int, array: np.ndarray) -> np.ndarray:
        """An ONNX-layout input array -> the layout this model's input ``index`` takes."""
        if self.input_layout == "NHWC" and array.ndim == 4:
            return np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))
        return array

    def to_onnx_output(self, array: np.ndarray) -> np.ndarray:
        """A TFLite output array -> the ONNX layout (4-D outputs are NHWC unless keep_nchw)."""
        if self.input_layout == "NHWC" and array.ndim == 4:
            return np.ascontiguousarray(np.transpose(array, (0, 3, 1, 2)))
        return array


class LoweringContext:
    """The tensors lowered so far, by ONNX name, and helpers for handlers."""

    def __init__(self, *, opset: int, integer: bool = False) -> None:
        self.values: dict[str, Value] = {}
        self.opset = opset
        self.integer = integer  # the graph is for int8 quantization: prefer forms XNNPACK runs in int8

    def get(self, node: Node, index: int) -> Value | None:
        """Input ``index`` of ``node`` (None when absent or given as an empty name)."""
        if index >= len(node.inputs) or not node.inputs[index]:
            return None
        return self.values[node.inputs[index]]

    def const(self, node: Node, index: int, *, what: str = "input") -> np.ndarray | None:
        """Input ``index`` as a numpy constant; UnsupportedOpError if it is computed at run time."""
        value = self.get(node, index)
        if value is None:
            return None
        if not value.is_const:
            raise self.unsupported(node, f"{what} {node.inputs[index]!r} must be a constant")
        return value.data

    def unsupported(self, node: Node, detail: str) -> UnsupportedOpError:
        return UnsupportedOpError(node.op_type, node.name, supported_ops(), detail)


INTEGER_FORMS = frozenset({"HardSwish", "PRelu", "AveragePool"})  # ops whose handler looks at LoweringContext.integer
CONSTANT_BIAS_FORMS = frozenset({"Add", "Sub"})  # ... when one operand is a constant (a bias)


def has_integer_forms(model) -> bool:
    """Whether ``lower(model, integer=True)`` differs from the float lowering."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    return any(
        node.op_type in INTEGER_FORMS or (node.op_type in CONSTANT_BIAS_FORMS and any(i in constants for i in node.input))
        for node in model.graph.node
    )


def lower(
    model,
    *,
    keep_nchw: bool = False,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    integer: bool = False,
) -> LoweredModel:
    """Lower an ``onnx.ModelProto`` to a TF concrete function (NHWC I/O unless ``keep_nchw``).

    ``integer=True`` lowers for int8 quantization: a few ops (HardSwish, PRelu, AveragePool, Add/Sub of a
    constant) take a form that XNNPACK runs in int8, where the float form would leave its int8 kernel out.

    ``input_shapes`` maps ONNX input names to static ONNX-layout (NCHW) shapes;
    a dynamic batch defaults to 1.  Raises UnsupportedOpError before any output
    is written for ops without a handler.
    """
    import onnx
    import tensorflow as tf
    from onnx import numpy_helper

    prepared = prepare_model(model, input_shapes=input_shapes)
    fuse_hardswish(prepared)  # Paddle's x * clip(x + 3, 0, 6) / 6 as one HardSwish
    _check_ops(prepared)
    graph = prepared.graph
    opset = next((o.version for o in prepared.opset_import if o.domain in ("", "ai.onnx")), 17)
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes = [_node(proto) for proto in graph.node]
    inputs = graph_inputs(prepared)
    onnx_shapes = tuple(tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in inputs)
    dtypes = tuple(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)) for v in inputs)
    nhwc_inputs = not keep_nchw
    specs: list[Any] = []  # tf.TensorSpec
    for shape, dtype in zip(onnx_shapes, dtypes):
        stored = tuple(shape[i] for i in (0, 2, 3, 1)) if nhwc_inputs and len(shape) == 4 else shape
        specs.append(tf.TensorSpec(stored, tf.as_dtype(dtype), name=input_key(len(specs))))
    output_names = tuple(v.name for v in graph.output)

    def run_graph(*args):
        ctx = LoweringContext(opset=opset, integer=integer)
        ctx.values.update({name: Value(array) for name, array in initializers.items()})
        for value, arg, shape in zip(inputs, args, onnx_shapes):
            layout = Layout.NHWC if nhwc_inputs and len(shape) == 4 else Layout.PLAIN
            ctx.values[value.name] = Value(arg, layout)
        for node in nodes:
            _lower_node(node, ctx, opset=opset)
        results = {}
        for index, name in enumerate(output_names):
            value = ctx.values[name]
            data = as_nhwc(value) if (value.rank == 4 and not keep_nchw) else as_plain(value)
            results[output_key(index)] = tf.identity(data)
        return results  # keyed by position: convert.interface maps the keys back to ONNX order and names

    module = tf.Module()
    module.function = tf.function(run_graph, input_signature=specs, autograph=False)
    concrete = module.function.get_concrete_function()
    results = concrete.structured_outputs
    output_shapes = tuple(tuple(int(d) for d in results[output_key(i)].shape) for i in range(len(output_names)))
    return LoweredModel(
        concrete_function=concrete,
        input_names=tuple(v.name for v in inputs),
        input_shapes=tuple(tuple(s.shape.as_list()) for s in specs),
        input_layout="NCHW" if keep_nchw else "NHWC",
        output_names=output_names,
        output_shapes=output_shapes,
        onnx_input_shapes=onnx_shapes,
        input_dtypes=tuple(str(d) for d in dtypes),
        module=module,
    )


def _lower_node(node: Node, ctx: LoweringContext, *, opset: int) -> None:
    present = [ctx.values[name] for name in node.inputs if name]
    missing = [name for name in node.inputs if name and name not in ctx.values]
    if missing:
        raise ShapeError(f"node {node.name!r} reads undefined tensor(s) {missing}")
    if present and all(v.is_const for v in present) and node.op_type not in _NO_FOLD:
        outputs = [Value(a) for a in _fold(node, ctx, opset=opset)]
    else:
        handler = get_handler(node.op_type)
        if handler is None:
            raise ctx.unsupported(node, "no lowering registered")
        outputs = handler(node, ctx)
    for name, value in zip(node.outputs, outputs):
        if name:
            ctx.values[name] = value


_NO_FOLD: frozenset[str] = frozenset()


def _fold(node: Node, ctx: LoweringContext, *, opset: int) -> list[np.ndarray]:
    """Evaluate a node whose inputs are all constants with the ONNX reference evaluator."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    feeds = {name: ctx.values[name].data for name in node.inputs if name}
    graph_inputs_ = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape) for name, array in feeds.items()
    ]
    graph_outputs = [helper.make_empty_tensor_value_info(name) for name in node.outputs if name]
    graph = helper.make_graph([node.proto], "fold", graph_inputs_, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ctx.unsupported(node, f"constant folding failed: {first}") from None
    return [np.asarray(r) for r in results]


def _check_ops(model) -> None:
    known = set(supported_ops())
    for proto in model.graph.node:
        if proto.domain not in ("", "ai.onnx") or proto.op_type not in known:
            raise UnsupportedOpError(proto.op_type, proto.name or "<unnamed>", sorted(known), "no lowering registered")


def _node(proto) -> Node:
    from onnx import helper

    attrs = {}
    for attribute in proto.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8") for v in value]
        attrs[attribute.name] = value
    return Node(
        op_type=proto.op_type,
        name=proto.name or f"{proto.op_type}:{proto.output[0] if proto.output else '?'}",
        inputs=tuple(proto.input),
        outputs=tuple(proto.output),
        attrs=attrs,
        proto=proto,
    )
