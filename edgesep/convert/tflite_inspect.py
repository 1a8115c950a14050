"""Look inside a .tflite file: op histogram and tensor dtypes (helpers for every team's tests)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _interpreter(model: str | Path | bytes):
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model))
    return Interpreter(model_path=str(model))


def op_histogram(model: str | Path | bytes) -> dict[str, int]:
    """``{"CONV_2D": 3, "DEPTHWISE_CONV_2D": 2, ...}`` for a .tflite path or model bytes."""
    interpreter = _interpreter(model)
    counts = Counter(op["op_name"] for op in interpreter._get_ops_details())
    return dict(sorted(counts.items()))


def tensor_dtypes(model: str | Path | bytes) -> dict[str, str]:
    """Tensor name -> numpy dtype name (``"float32"``, ``"int8"``, ...) for every tensor."""
    interpreter = _interpreter(model)
    return {detail["name"]: detail["dtype"].__name__ for detail in interpreter.get_tensor_details()}


def fused_activations(model: str | Path | bytes) -> int:
    """How many standalone activation ops (RELU, RELU6, ...) were NOT fused into their producers."""
    histogram = op_histogram(model)
    return sum(histogram.get(name, 0) for name in ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"))
