"""Channel dependency analysis: which module slices must shrink together.

The model is traced with ``torch.fx`` and each tensor is tagged with the *channel group* its
channel dimension belongs to.  A standard (groups=1) Conv2d or a Linear starts a new group as its
*producer*; depthwise convs and BatchNorm *pass* the group through; element-wise ops, pooling and
dropout keep it; ``add``/``mul`` of two tensors merge their groups (residual connections, so tied
channels are pruned consistently); a flatten records how many features each channel spans; the
next Conv2d/Linear *consumes* the group (its input channels).  Groups that reach the model input or
output, or meet an op we do not understand (concat, grouped conv, reshapes we cannot follow),
are *fixed* and never pruned.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from edgesep.errors import InputError

PRODUCER, PASSTHROUGH, CONSUMER = "producer", "passthrough", "consumer"


@dataclass(frozen=True)
class Member:
    """One module slice tied to a channel group."""

    name: str  # qualified module name in the model
    role: str  # producer (output dim), passthrough (depthwise conv / BN), consumer (input dim)
    factor: int = 1  # consumer Linear after a flatten: features per channel


@dataclass
class ChannelGroup:
    """Channels that must be kept or removed together."""

    size: int
    members: list[Member] = field(default_factory=list)
    fixed: bool = False

    @property
    def producers(self) -> list[Member]:
        return [m for m in self.members if m.role == PRODUCER]


_ELEMENTWISE_MODULES = (
    "ReLU", "ReLU6", "Hardswish", "Hardsigmoid", "SiLU", "Sigmoid", "Tanh", "GELU", "LeakyReLU", "ELU",
    "PReLU", "Mish", "Identity", "Dropout", "Dropout2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d", "Hardtanh",
)  # fmt: skip
_ELEMENTWISE_NAMES = (
    "relu", "relu_", "relu6", "hardswish", "hardsigmoid", "silu", "sigmoid", "tanh", "gelu", "leaky_relu",
    "hardtanh", "clamp", "clamp_", "clip", "dropout", "contiguous", "max_pool2d", "avg_pool2d",
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "mish", "elu",
)  # fmt: skip
_BINARY = {operator.add, operator.iadd, operator.mul, operator.imul, operator.sub}
_BINARY_NAMES = ("add", "add_", "mul", "mul_", "sub")
_FLATTEN_NAMES = ("flatten", "view", "reshape")


class _Groups:
    """Union-find over channel groups."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.groups: list[ChannelGroup] = []

    def new(self, size: int, *, fixed: bool = False, member: Member | None = None) -> int:
        self.parent.append(len(self.parent))
        self.groups.append(ChannelGroup(size=size, members=[member] if member else [], fixed=fixed))
        return len(self.parent) - 1

    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def get(self, gid: int) -> ChannelGroup:
        return self.groups[self.find(gid)]

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        ga, gb = self.groups[ra], self.groups[rb]
        if ga.size != gb.size:
            ga.fixed = gb.fixed = True
            return ra
        self.parent[rb] = ra
        ga.members.extend(gb.members)
        ga.fixed = ga.fixed or gb.fixed
        return ra

    def roots(self) -> list[ChannelGroup]:
        return [g for i, g in enumerate(self.groups) if self.find(i) == i]


@dataclass(frozen=True)
class _Tag:
    """The channel group of a tensor's channel dimension and the features each channel spans."""

    gid: int
    factor: int = 1
    ndim: int = 4


def analyze(model, input_shape: tuple[int, ...]) -> list[ChannelGroup]:
    """Trace ``model`` on ``input_shape`` and return its channel groups (fixed ones included)."""
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        traced = fx.symbolic_trace(model)
    except Exception as error:  # fx raises many types for untraceable Python control flow
        raise InputError(f"cannot trace {type(model).__name__} with torch.fx for pruning: {error}") from error
    was_training = model.training
    traced.eval()
    with torch.no_grad():
        ShapeProp(traced).propagate(torch.zeros(input_shape))
    model.train(was_training)
    modules = dict(traced.named_modules())
    groups = _Groups()
    tags: dict[str, _Tag | None] = {}
    seen_modules: set[str] = set()

    def shape_of(node) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def tensor_tags(node) -> list[_Tag]:
        found: list[_Tag] = []
        for arg in (*node.args, *node.kwargs.values()):
            for item in arg if isinstance(arg, (list, tuple)) else (arg,):
                item_tag = tags.get(item.name) if isinstance(item, fx.Node) else None
                if item_tag is not None:
                    found.append(item_tag)
        return found

    def fix_inputs_and_new(node) -> _Tag | None:
        for tag in tensor_tags(node):
            groups.get(tag.gid).fixed = True
        shape = shape_of(node)
        if shape is None or len(shape) < 2:
            return None
        return _Tag(groups.new(shape[1], fixed=True), ndim=len(shape))

    for node in traced.graph.nodes:
        shape = shape_of(node)
        if node.op == "placeholder":
            tags[node.name] = _Tag(groups.new(shape[1], fixed=True), ndim=len(shape)) if shape else None
            continue
        if node.op == "output":
            for tag in tensor_tags(node):
                groups.get(tag.gid).fixed = True
            continue
        if node.op == "get_attr":
            tags[node.name] = None
            continue
        inputs = tensor_tags(node)
        first = inputs[0] if inputs else None
        if node.op == "call_module":
            module = modules[node.target]
            kind = type(module).__name__
            name = str(node.target)
            if name in seen_modules:  # a module applied twice: shared weights, leave alone
                tags[node.name] = fix_inputs_and_new(node)
                continue
            seen_modules.add(name)
            if isinstance(module, nn.Conv2d) and first is not None and first.ndim == 4 and first.factor == 1:
                if module.groups == 1:
                    groups.get(first.gid).members.append(Member(name, CONSUMER))
                    tags[node.name] = _Tag(groups.new(module.out_channels, member=Member(name, PRODUCER)))
                elif module.groups == module.in_channels == module.out_channels:
                    groups.get(first.gid).members.append(Member(name, PASSTHROUGH))
                    tags[node.name] = first
                else:
                    tags[node.name] = fix_inputs_and_new(node)
            elif isinstance(module, nn.BatchNorm2d) and first is not None and first.ndim == 4:
                groups.get(first.gid).members.append(Member(name, PASSTHROUGH))
                tags[node.name] = first
            elif isinstance(module, nn.Linear) and first is not None and first.ndim == 2:
                group = groups.get(first.gid)
                if group.size * first.factor == module.in_features:
                    group.members.append(Member(name, CONSUMER, factor=first.factor))
                else:
                    group.fixed = True
                tags[node.name] = _Tag(groups.new(module.out_features, member=Member(name, PRODUCER)), ndim=2)
            elif kind in _ELEMENTWISE_MODULES and first is not None:
                tags[node.name] = first
            elif isinstance(module, nn.Flatten) and first is not None:
                tags[node.name] = _flatten_tag(first, node, shape_of) or fix_inputs_and_new(node)
            else:
                tags[node.name] = fix_inputs_and_new(node)
            continue
        # call_function / call_method
        target = node.target
        target_name = target if isinstance(target, str) else getattr(target, "__name__", "")
        if shape is None:  # size(), getattr, python ints: not tensors
            tags[node.name] = None
            for tag in inputs:  # a tensor used in non-tensor computations we cannot follow
                if target_name not in ("size", "dim", "getattr"):
                    groups.get(tag.gid).fixed = True
            continue
        if target in _BINARY or target_name in _BINARY_NAMES:
            tags[node.name] = _binary_tag(groups, inputs, shape) or fix_inputs_and_new(node)
        elif target_name in _ELEMENTWISE_NAMES and first is not None and len(inputs) == 1:
            tags[node.name] = first
        elif target_name in _FLATTEN_NAMES and first is not None:
            tags[node.name] = _flatten_tag(first, node, shape_of) or fix_inputs_and_new(node)
        elif (target_name == "mean" and first is not None and first.ndim == 4 and len(shape) in (2, 4)
              and shape[1] == groups.get(first.gid).size):  # fmt: skip
            tags[node.name] = _Tag(first.gid, ndim=len(shape))
        else:
            tags[node.name] = fix_inputs_and_new(node)
    return groups.roots()


def _binary_tag(groups: _Groups, inputs: list[_Tag], shape: tuple[int, ...]) -> _Tag | None:
    if len(inputs) == 1:  # tensor (op) scalar
        return inputs[0]
    if len(inputs) != 2 or inputs[0].factor != inputs[1].factor or len(shape) != inputs[0].ndim:
        return None
    gid = groups.union(inputs[0].gid, inputs[1].gid)
    if groups.get(gid).fixed and groups.get(inputs[0].gid).size != groups.get(inputs[1].gid).size:
        return None
    return _Tag(gid, inputs[0].factor, inputs[0].ndim)


def _flatten_tag(tag: _Tag, node, shape_of) -> _Tag | None:
    """(N, C, H, W) -> (N, C*H*W): channel c spans features c*H*W .. (c+1)*H*W - 1."""
    source = node.args[0]
    in_shape = shape_of(source)
    out_shape = shape_of(node)
    if in_shape is None or out_shape is None or len(out_shape) != 2 or len(in_shape) < 2:
        return None
    if in_shape[0] != out_shape[0] or out_shape[1] != math.prod(in_shape[1:]):
        return None
    if tag.ndim == 2:
        return tag
    return _Tag(tag.gid, factor=tag.factor * math.prod(in_shape[2:]), ndim=2)


def prunable(groups: list[ChannelGroup]) -> list[ChannelGroup]:
    """Groups that may shrink: not fixed and started by at least one producer."""
    return [g for g in groups if not g.fixed and g.producers]
