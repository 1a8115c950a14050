"""ONNX-level rewrites of op patterns that exporters spell out, into the one op they compute.

Paddle2ONNX writes HardSwish as ``Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)``: lowered op by op that is ADD, MUL,
MUL (three ops, and an int8 graph requantizes between each), where one HardSwish lowers to a single HARD_SWISH
in float and to the int8 form XNNPACK runs (``ops/activations.py``). The rewrite happens on the prepared graph
before lowering, so convert and quantize see the same graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GraphIndex:
    """Who produces and who reads each tensor of an ONNX graph, and its constant tensors (initializers and
    Constant nodes)."""

    constants: dict[str, np.ndarray]
    producer: dict[str, Any]
    readers: dict[str, list[Any]]
    outputs: frozenset[str]

    def only_reader(self, tensor: str) -> Any:
        """The one node reading ``tensor`` (None when it has several readers or is a graph output)."""
        readers = self.readers.get(tensor, [])
        return readers[0] if len(readers) == 1 and tensor not in self.outputs else None


def graph_index(model) -> GraphIndex:
    from onnx import numpy_helper

    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    producer = {out: node for node in graph.node for out in node.output}
    return GraphIndex(constants, producer, readers, frozenset(output.name for output in graph.output))


@dataclass(frozen=True)
class HardSwishMatch:
    """One HardSwish of the graph: a HardSwish node, or Paddle's ``x * clip(x + 3, 0, 6) / 6`` (``nodes``, in
    graph order of Add, Clip, Mul, Div; intermediate tensors read by nothing else)."""

    x: str
    y: str
    nodes: tuple[Any, ...]

    @property
    def spelled_out(self) -> bool:
        return len(self.nodes) > 1


def hardswish_matches(model, index: GraphIndex | None = None) -> list[HardSwishMatch]:
    """Every HardSwish of ``model``, as one node or spelled out."""
    from onnx import helper

    index = index or graph_index(model)
    constants, producer = index.constants, index.producer

    def scalar(name: str, value: float) -> bool:
        array = constants.get(name)
        return array is not None and array.size == 1 and float(np.asarray(array).ravel()[0]) == value

    def clip_bounds(node) -> tuple[float | None, float | None]:
        if len(node.input) >= 3:
            low, high = constants.get(node.input[1]), constants.get(node.input[2])
            return (None if low is None else float(low.ravel()[0]), None if high is None else float(high.ravel()[0]))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return attrs.get("min"), attrs.get("max")

    matches = []
    for div in model.graph.node:
        if div.op_type == "HardSwish":
            matches.append(HardSwishMatch(div.input[0], div.output[0], (div,)))
            continue
        if div.op_type != "Div" or not scalar(div.input[1], 6.0):
            continue
        mul = producer.get(div.input[0])
        if mul is None or mul.op_type != "Mul" or index.only_reader(mul.output[0]) is None:
            continue
        for x_name, clip_name in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            clip = producer.get(clip_name)
            if clip is None or clip.op_type != "Clip" or index.only_reader(clip.output[0]) is None or clip_bounds(clip) != (0.0, 6.0):
                continue
            add = producer.get(clip.input[0])
            if add is None or add.op_type != "Add" or index.only_reader(add.output[0]) is None:
                continue
            operands = list(add.input)
            if x_name in operands and any(scalar(o, 3.0) for o in operands if o != x_name):
                matches.append(HardSwishMatch(x_name, div.output[0], (add, clip, mul, div)))
                break
    return matches


def replace_nodes(model, replacements: dict[int, list[Any]], dead: set[int]) -> None:
    """Rebuild the graph's node list in place: ``replacements`` maps id(node) to the nodes written where it
    stood; nodes whose id is in ``dead`` are dropped."""
    kept = []
    for node in model.graph.node:
        if id(node) in dead:
            continue
        kept.extend(replacements.get(id(node), [node]))
    del model.graph.node[:]
    model.graph.node.extend(kept)


def fuse_hardswish(model) -> int:
    """Replace every ``x * clip(x + 3, 0, 6) / 6`` whose intermediate tensors have no other reader by one
    HardSwish node, in place; returns how many were fused."""
    from onnx import helper

    spelled = [match for match in hardswish_matches(model) if match.spelled_out]
    replacements, dead = {}, set[int]()
    for match in spelled:
        div = match.nodes[-1]
        replacements[id(div)] = [helper.make_node("HardSwish", [match.x], [match.y], name=f"{div.name}/hardswish")]
        dead.update(id(node) for node in match.nodes[:-1])
    if spelled:
        replace_nodes(model, replacements, dead)
    return len(spelled)
