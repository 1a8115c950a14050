"""The weighted ops of an int8 TFLite model, for the steps that rewrite its constants in place against the calibrated
float model it was quantized from (int8_bias.py: int32 biases; adaround.py: int8 weights).

Each CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED op is listed in execution order with its level (1 + the highest
level of a listed op upstream) and its output's tensor name in the float model (the quantizer keeps the calibrated
model's tensor names; a graph output may be named after its DEQUANTIZE).  Ops of one level do not depend on each
other: a step that measures each layer with every layer upstream already rewritten needs one pass over the samples
per level, not per op.

Heavy: the interpreter; import lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesep.runners.interpreter import op_details, open_interpreter, tensor_detail

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class WeightedOp:
    index: int  # op index in the int8 model (execution order)
    op: str
    name: str  # output tensor name in the int8 model
    float_name: str  # the same tensor in the float model
    input: int  # tensor indices in the int8 model
    weights: int
    bias: int  # -1: no bias
    output: int
    level: int


def weighted_ops(
    quantized: bytes, float_model: bytes, *, check: Callable[[Any, dict[str, Any]], str]
) -> tuple[list[WeightedOp], list[str]]:
    """The weighted ops of ``quantized`` that ``check(interpreter, op)`` accepts (returns ``""``; else the reason
    to skip) and whose output has a float counterpart, with their levels; and the skipped ones as ``"name (reason)"``."""
    runner = open_interpreter(quantized, xnnpack=False, allocate=False)
    float_runner = open_interpreter(float_model, xnnpack=False, allocate=False)
    float_names = {tensor_detail(float_runner, i)["name"] for op in op_details(float_runner) for i in op["outputs"] if i >= 0}
    dequantized = {int(op["inputs"][0]): tensor_detail(runner, int(op["outputs"][0]))["name"]
                   for op in op_details(runner) if op["op_name"] == "DEQUANTIZE"}  # fmt: skip
    tensor_level: dict[int, int] = {}
    found: list[WeightedOp] = []
    skipped: list[str] = []
    for op in op_details(runner):
        level = max((tensor_level.get(int(i), 0) for i in op["inputs"] if i >= 0), default=0)
        outputs = [int(i) for i in op["outputs"] if i >= 0]
        if op["op_name"] in WEIGHTED_OPS and outputs:
            name = tensor_detail(runner, outputs[0])["name"]
            float_name = name if name in float_names else dequantized.get(outputs[0], "")
            reason = check(runner, op)
            if not reason and float_name not in float_names:
                reason = "no float tensor of that name"
            if reason:
                skipped.append(f"{name} ({reason})")
            else:
                level += 1
                inputs = [int(i) for i in op["inputs"]]
                bias = inputs[2] if len(inputs) > 2 else -1
                found.append(WeightedOp(op["index"], op["op_name"], name, float_name, inputs[0], inputs[1], bias, outputs[0], level))
        for index in outputs:
            tensor_level[index] = level
    return found, skipped


def run_samples(model: bytes, samples: Sequence[Sequence[np.ndarray]], read: Callable[[Any], None]) -> None:
    """Run ``model`` (reference kernels, every tensor preserved) on each of ``samples`` (input lists in its layout)
    and call ``read(interpreter)`` after each run."""
    runner = open_interpreter(model, xnnpack=False, preserve_all_tensors=True)
    inputs = runner.get_input_details()
    for sample in samples:
        for detail, array in zip(inputs, sample):
            runner.set_tensor(detail["index"], np.ascontiguousarray(array, dtype=detail["dtype"]))
        runner.invoke()
        read(runner)


def output_tensors(model: bytes, names: set[str]) -> dict[str, int]:
    """Name -> tensor index of the op outputs of ``model`` named in ``names``."""
    runner = open_interpreter(model, xnnpack=False, allocate=False)
    return {tensor_detail(runner, i)["name"]: int(i) for op in op_details(runner) for i in op["outputs"] if i >= 0 and
            tensor_detail(runner, i)["name"] in names}  # fmt: skip
