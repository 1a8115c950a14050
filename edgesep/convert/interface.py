"""Give a converted .tflite the ONNX model's interface: inputs and outputs in ONNX order, carrying the ONNX
names, and a ``serving_default`` SignatureDef whose keys are the ONNX names.

The lowering names the function's arguments and results by position (``input_0000``, ``output_0000``...);
the TFLite converter keeps those keys in its SignatureDef but lists the subgraph's outputs in an order of
its own (``PartitionedCall:1, PartitionedCall:0``). The keys tell which tensor is which, so the flatbuffer is
rewritten here once, for float and quantized models alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgesep.convert.tflite_inspect import read_model, signature, tensor_map, write_model
from edgesep.errors import ShapeError

SIGNATURE_KEY = "serving_default"


def input_key(index: int) -> str:
    return f"input_{index:04d}"


def output_key(index: int) -> str:
    return f"output_{index:04d}"


def with_onnx_interface(model_bytes: bytes, *, input_names: Sequence[str], output_names: Sequence[str]) -> bytes:
    """``model_bytes`` with ONNX-ordered, ONNX-named inputs/outputs and signature keys (see module doc)."""
    model = read_model(model_bytes)
    found = signature(model, SIGNATURE_KEY)
    subgraph = model.subgraphs[found.subgraph]
    inputs = _ordered(found.inputs, [input_key(i) for i in range(len(input_names))], "input")
    outputs = _ordered(found.outputs, [output_key(i) for i in range(len(output_names))], "output")
    subgraph.inputs = np.asarray(inputs, dtype=np.int32)
    subgraph.outputs = np.asarray(outputs, dtype=np.int32)
    named: set[int] = set()
    for tensor, name in [*zip(inputs, input_names), *zip(outputs, output_names)]:
        if tensor not in named:  # a graph input passed straight through keeps the input's name
            subgraph.tensors[tensor].name = name.encode("utf-8")
            named.add(tensor)
    definition = model.signatureDefs[found.index]
    definition.inputs = [tensor_map(name, tensor) for name, tensor in zip(input_names, inputs)]
    definition.outputs = [tensor_map(name, tensor) for name, tensor in zip(output_names, outputs)]
    return write_model(model)


def _ordered(by_key: dict[str, int], keys: list[str], what: str) -> list[int]:
    missing = [key for key in keys if key not in by_key]
    if missing or len(by_key) != len(keys):
        raise ShapeError(f"the converted model's {what}s {sorted(by_key)} do not match the ONNX {what}s {keys}")
    return [by_key[key] for key in keys]
