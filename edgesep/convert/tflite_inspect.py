"""Look inside a .tflite file: op histogram, tensor dtypes, XNNPACK partitions, the SignatureDef, and the flatbuffer's
object model (``read_model``/``write_model``/``op_name``/``tensor_map``) for the steps that rewrite a model (the ONNX
interface, activation ranges, int8 biases): the only module that touches TensorFlow's flatbuffer schema."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.errors import ShapeError
from edgesep.runners.interpreter import op_details, open_interpreter


def _interpreter(model: str | Path | bytes):
    return open_interpreter(model, allocate=False)


def op_histogram(model: str | Path | bytes) -> dict[str, int]:
    """``{"CONV_2D": 3, "DEPTHWISE_CONV_2D": 2, ...}`` for a .tflite path or model bytes."""
    interpreter = _interpreter(model)
    counts = Counter(op["op_name"] for op in op_details(interpreter))
    return dict(sorted(counts.items()))


def tensor_dtypes(model: str | Path | bytes) -> dict[str, str]:
    """Tensor name -> numpy dtype name (``"float32"``, ``"int8"``, ...) for every tensor."""
    interpreter = _interpreter(model)
    return {detail["name"]: detail["dtype"].__name__ for detail in interpreter.get_tensor_details()}


def fused_activations(model: str | Path | bytes) -> int:
    """How many standalone activation ops (RELU, RELU6, ...) were NOT fused into their producers."""
    histogram = op_histogram(model)
    return sum(histogram.get(name, 0) for name in ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"))


@dataclass(frozen=True)
class LeftOutOp:
    """An op the delegate did not take: it runs on TFLite's own kernels between delegated parts."""

    index: int
    op: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Delegation:
    """The runtime's view of a model: how XNNPACK (TFLite's default CPU delegate) partitions it.

    ``partitions`` is the number of delegate nodes; one partition and no op left out is the goal: every op
    left out runs on reference kernels and splits the graph.
    """

    delegate: str
    ops: int
    partitions: int
    delegated_ops: int
    left_out: tuple[LeftOutOp, ...]

    @property
    def single_partition(self) -> bool:
        return self.partitions == 1 and not self.left_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "delegate": self.delegate,
            "ops": self.ops,
            "partitions": self.partitions,
            "delegated_ops": self.delegated_ops,
            "left_out": [op.to_dict() for op in self.left_out],
        }

    def summary(self) -> str:
        if not self.left_out:
            return f"{self.partitions} {self.delegate} partition(s), all {self.ops} ops delegated"
        kinds = Counter(op.op for op in self.left_out)
        listed = ", ".join(f"{name} x{count}" for name, count in sorted(kinds.items(), key=lambda kv: -kv[1]))
        return f"{self.partitions} {self.delegate} partition(s), {len(self.left_out)} of {self.ops} ops left out ({listed})"


_KNOWN_REASONS = {
    "GATHER": "XNNPACK has no GATHER",
    "PRELU": "XNNPACK takes PRELU in float only with a static slope",
    "DEQUANTIZE": "a float output or input of an integer graph (expected at the edges)",
    "QUANTIZE": "a float input of an integer graph (expected at the edges)",
}


def delegation(model: str | Path | bytes, *, threads: int | None = 1) -> Delegation:
    """Load ``model`` with the default delegate (XNNPACK) and report its partitions and the ops left out.

    After ``allocate_tensors`` the interpreter lists the original ops followed by one DELEGATE node per
    partition; the ops a partition replaced are found by walking back from its outputs to its inputs.
    """
    interpreter = open_interpreter(model, threads=threads, allocate=False)
    original = len(op_details(interpreter))
    interpreter.allocate_tensors()
    details = op_details(interpreter)
    ops, delegates = details[:original], details[original:]
    producer = {int(t): op["index"] for op in ops for t in op["outputs"] if t >= 0}
    delegated: set[int] = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        seen: set[int] = set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in boundary or tensor not in producer:
                continue
            seen.add(tensor)
            index = producer[tensor]
            if index not in delegated:
                delegated.add(index)
                stack.extend(int(t) for t in ops[index]["inputs"] if t >= 0)
    left_out = tuple(
        LeftOutOp(op["index"], op["op_name"], _KNOWN_REASONS.get(op["op_name"], "")) for op in ops if op["index"] not in delegated
    )
    return Delegation(
        delegate="XNNPACK" if delegates else "none",
        ops=len(ops),
        partitions=len(delegates),
        delegated_ops=len(delegated),
        left_out=left_out,
    )


@dataclass(frozen=True)
class Signature:
    """A SignatureDef: its place in the model's list, its subgraph and the tensor index of each key."""

    index: int
    subgraph: int
    inputs: dict[str, int]
    outputs: dict[str, int]


def signature(model: Any, key: str) -> Signature:
    """SignatureDef ``key`` of a flatbuffer object model (``flatbuffer_utils.convert_bytearray_to_object``);
    ShapeError unless there is exactly one."""
    found = [i for i, s in enumerate(model.signatureDefs or []) if _text(s.signatureKey) == key]
    if len(found) != 1:
        raise ShapeError(f"the converted model has no single {key!r} signature to name its I/O by")
    definition = model.signatureDefs[found[0]]
    return Signature(found[0], int(definition.subgraphIndex), _keyed(definition.inputs), _keyed(definition.outputs))


def _keyed(maps: Any) -> dict[str, int]:
    return {_text(m.name): int(m.tensorIndex) for m in maps or []}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_model(model: bytes) -> Any:
    """The flatbuffer's mutable object model (TensorFlow's ``schema_py_generated.ModelT``)."""
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(model))


def write_model(model: Any) -> bytes:
    """The bytes of an object model from :func:`read_model`."""
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def op_name(model: Any, operator: Any) -> str:
    """The builtin op name (``"CONV_2D"``) of an operator of an object model; ``""`` for a custom op."""
    from tensorflow.lite.python import schema_py_generated as schema

    code = model.operatorCodes[operator.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    return names.get(builtin, "")


def tensor_map(name: str, tensor: int) -> Any:
    """A SignatureDef entry (``TensorMapT``) naming tensor ``tensor``."""
    from tensorflow.lite.python import schema_py_generated as schema

    entry = schema.TensorMapT()
    entry.name = name.encode("utf-8")
    entry.tensorIndex = tensor
    return entry


def constant_data(model: bytearray, dtype: str) -> dict[int, tuple[int, int, np.ndarray]]:
    """Tensor index -> (start, stop) of its data in the model bytes and its per-channel scales, for the constant
    tensors of ``dtype`` (``"int32"``: biases, ``"int8"``: weights) in the first subgraph."""
    from tensorflow.lite.python import schema_py_generated as schema

    wanted = {"int32": schema.TensorType.INT32, "int8": schema.TensorType.INT8}[dtype]
    root = schema.Model.GetRootAs(model, 0)
    graph = root.Subgraphs(0)
    found = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        if tensor.Type() != wanted or tensor.Buffer() == 0:
            continue
        buffer = root.Buffers(tensor.Buffer())
        if buffer.Offset() > 1:  # data stored after the flatbuffer (models > 2 GB)
            start, size = int(buffer.Offset()), int(buffer.Size())
        else:
            field = buffer._tab.Offset(4)  # noqa: SLF001 - the generated reader has no public data offset
            if not field:
                continue
            start, size = buffer._tab.Vector(field), buffer._tab.VectorLen(field)  # noqa: SLF001
        quant = tensor.Quantization()
        scales = quant.ScaleAsNumpy() if quant is not None and quant.ScaleLength() else np.ones(1)
        found[index] = (int(start), int(start + size), np.asarray(scales, np.float64))
    return found


def own_buffers(quantized: bytes, tensors: set[int]) -> bytes:
    """``quantized`` where each of ``tensors`` (indices of constants to rewrite: biases, weights) has a buffer of its
    own: a buffer that several tensors share (the converter merges equal constants) is copied for all but one of its
    users when all of them are in ``tensors``, for every such user otherwise; the bytes are unchanged when nothing is
    shared."""
    from tensorflow.lite.python import schema_py_generated as schema

    root = schema.Model.GetRootAs(quantized, 0)
    users: dict[int, list[tuple[int, int]]] = {}
    for g in range(root.SubgraphsLength()):
        graph = root.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            buffer = graph.Tensors(t).Buffer()
            if buffer:
                users.setdefault(buffer, []).append((g, t))
    copies = []
    for shared in (found for found in users.values() if len(found) > 1):
        mine = [t for g, t in shared if g == 0 and t in tensors]
        copies += mine[1:] if len(mine) == len(shared) else mine
    if not copies:
        return quantized
    import copy

    model = read_model(quantized)
    graph = model.subgraphs[0].tensors
    for index in copies:
        model.buffers.append(copy.deepcopy(model.buffers[graph[index].buffer]))
        graph[index].buffer = len(model.buffers) - 1
    return write_model(model)
