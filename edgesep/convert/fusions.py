"""ONNX-level rewrites of op patterns that exporters spell out, into the one op they compute.

Paddle2ONNX writes HardSwish as ``Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)``: lowered op by op that is ADD, MUL,
MUL (three ops, and an int8 graph requantizes between each), where one HardSwish lowers to a single HARD_SWISH
in float and to the int8 form XNNPACK runs (``ops/activations.py``). The rewrite happens on the prepared graph
before lowering, so convert and quantize see the same graph.
"""

from __future__ import annotations

import numpy as np


def fuse_hardswish(model) -> int:
    """Replace every ``x * clip(x + 3, 0, 6) / 6`` whose intermediate tensors have no other reader by one
    HardSwish node, in place; returns how many were fused."""
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    for output in graph.output:
        readers[output.name] = readers.get(output.name, 0) + 1

    def scalar(name: str, value: float) -> bool:
        array = constants.get(name)
        return array is not None and array.size == 1 and float(np.asarray(array).ravel()[0]) == value

    def clip_bounds(node) -> tuple[float | None, float | None]:
        if len(node.input) >= 3:
            low, high = constants.get(node.input[1]), constants.get(node.input[2])
            return (None if low is None else float(low.ravel()[0]), None if high is None else float(high.ravel()[0]))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return attrs.get("min"), attrs.get("max")

    fused, dead = 0, set()
    replacements = {}
    for div in graph.node:
        if div.op_type != "Div" or not scalar(div.input[1], 6.0):
            continue
        mul = producer.get(div.input[0])
        if mul is None or mul.op_type != "Mul" or readers.get(mul.output[0]) != 1:
            continue
        for x_name, clip_name in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            clip = producer.get(clip_name)
            if clip is None or clip.op_type != "Clip" or readers.get(clip.output[0]) != 1 or clip_bounds(clip) != (0.0, 6.0):
                continue
            add = producer.get(clip.input[0])
            if add is None or add.op_type != "Add" or readers.get(add.output[0]) != 1:
                continue
            operands = list(add.input)
            if x_name in operands and any(scalar(o, 3.0) for o in operands if o != x_name):
                replacements[id(div)] = helper.make_node("HardSwish", [x_name], [div.output[0]], name=f"{div.name}/hardswish")
                dead.update({id(mul), id(clip), id(add)})
                fused += 1
                break
    if not fused:
        return 0
    kept = [replacements.get(id(node), node) for node in graph.node if id(node) not in dead]
    del graph.node[:]
    graph.node.extend(kept)
    return fused
