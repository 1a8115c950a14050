"""Batch-norm folding and cross-layer equalization (Nagel et al. 2019) on PyTorch modules.

Depthwise filters have per-channel weight ranges that differ by orders of magnitude, which ruins
per-tensor int8 weights.  For a pair ``conv1 -> act -> conv2`` where ``act`` is positively
homogeneous (ReLU, identity, pooling), scaling output channel ``i`` of ``conv1`` by ``1/s_i`` and
input channel ``i`` of ``conv2`` by ``s_i`` leaves the function unchanged; ``s_i = sqrt(r1_i / r2_i)``
makes both ranges ``sqrt(r1_i * r2_i)``.  All pairs are rescaled in turn until the scales converge.

ReLU6 is not positively homogeneous: ``relu6(x / s) * s = clip(x, 0, 6 s)``, which differs from
``relu6(x)`` for any ``s != 1`` (``s < 1`` clips earlier, ``s > 1`` later).  ``EqualizeConfig.relu6``
chooses what happens:

* ``"skip"`` (default) - pairs through ReLU6 are left alone: exact, but MobileNetV2 gains little.
* ``"clip"`` - the ReLU6 is replaced by :class:`ChannelClip` (``min(relu(x), u_c)``, per-channel
  bound ``u_c = 6 / s_c``): exact; exports as Relu + Min, one more elementwise op per layer.
* ``"relu"`` - the ReLU6 is replaced by ReLU before equalizing, as in the paper: NOT exact (differs
  wherever a pre-activation exceeds 6); use only after measuring.

High-bias absorption moves ``c = max(0, beta - k * |gamma|)`` (from the folded BN statistics) out of
``conv1``'s bias into ``conv2``'s: ``relu(x) = relu(x - c) + c`` whenever ``x >= c``, which holds for
all but a ~k-sigma tail.  It is applied only when ``conv2`` has no padding (1x1 pointwise, linear),
where ``W2 @ c`` is the same at every position.  Works on a copy; torch is imported at module level,
so import this module lazily.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TypeGuard, cast

import torch
import torch.nn.functional as F
from torch import fx, nn

from edgesep.errors import ConfigError, InputError

RELU6_MODES = ("skip", "clip", "relu")
_PASSTHROUGH_MODULES = (nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_PASSTHROUGH_FUNCTIONS = {F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d, torch.flatten, F.dropout}
_RELU_FUNCTIONS = {F.relu, torch.relu}
_PASSTHROUGH_METHODS = {"flatten", "view", "reshape"}
_Layer = nn.Conv2d | nn.Linear  # the layers a Pair connects


@dataclass(frozen=True)
class EqualizeConfig:
    """How to equalize: iteration cap, convergence threshold on ``max |log s|``, ReLU6 policy, absorption."""

    iterations: int = 50
    tolerance: float = 1e-4
    relu6: str = "skip"
    absorb_bias: bool = True
    absorb_sigmas: float = 3.0

    def __post_init__(self) -> None:
        if self.relu6 not in RELU6_MODES:
            raise ConfigError(f"relu6 must be one of {', '.join(RELU6_MODES)}, got {self.relu6!r}")
        if self.iterations < 1 or self.tolerance <= 0 or self.absorb_sigmas < 0:
            raise ConfigError(f"invalid EqualizeConfig: {self}")


@dataclass(frozen=True)
class Pair:
    """``first`` -> (``activation``) -> ``second``: module names; ``kind`` is relu / relu6 / clip / linear."""

    first: str
    second: str
    kind: str
    activation: str | None = None


@dataclass(frozen=True)
class EqualizeReport:
    folded: tuple[str, ...]
    pairs: tuple[Pair, ...]
    iterations: int
    final_change: float
    absorbed: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    statistics: dict = field(default_factory=dict, repr=False, compare=False)  # conv -> (beta, sigma), rescaled

    def to_dict(self) -> dict:
        return {
            "folded": list(self.folded),
            "pairs": [[p.first, p.second, p.kind] for p in self.pairs],
            "iterations": self.iterations,
            "final_change": self.final_change,
            "absorbed": list(self.absorbed),
            "replaced": list(self.replaced),
        }


class ChannelClip(nn.Module):
    """``min(relu(x), upper[c])`` per channel: ReLU6 with a bound that equalization can rescale."""

    upper: torch.Tensor  # a buffer (register_buffer), declared for type checkers

    def __init__(self, channels: int, upper: float = 6.0) -> None:
        super().__init__()
        self.register_buffer("upper", torch.full((1, channels, 1, 1), float(upper)))

    def forward(self, x):
        return torch.minimum(torch.relu(x), self.upper)


def trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as error:  # fx raises many types for data-dependent control flow
        raise InputError(f"cannot trace {type(model).__name__} with torch.fx: {str(error).splitlines()[0]}") from error


def _module_uses(graph: fx.Graph) -> dict[str, int]:
    uses: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            uses[node.target] = uses.get(node.target, 0) + 1
    return uses


def _layer(model: nn.Module, name: str) -> _Layer:
    """The Conv2d/Linear called ``name`` (pairs and folds only name such layers)."""
    return cast(_Layer, model.get_submodule(name))


def _clip(model: nn.Module, pair: Pair) -> ChannelClip:
    """The ChannelClip between the layers of a ``clip`` pair."""
    assert pair.activation is not None  # clip pairs always name their activation
    return cast(ChannelClip, model.get_submodule(pair.activation))


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attribute = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attribute, module)


def _is_simple_conv(module: nn.Module) -> TypeGuard[nn.Conv2d]:
    """A Conv2d that is dense (groups 1) or depthwise (groups == in == out)."""
    if not isinstance(module, nn.Conv2d):
        return False
    return module.groups == 1 or module.groups == module.in_channels == module.out_channels


def _ensure_bias(layer: _Layer) -> torch.Tensor:
    if layer.bias is None:
        out = layer.weight.shape[0]
        layer.bias = nn.Parameter(torch.zeros(out, dtype=layer.weight.dtype))
    return layer.bias


@torch.no_grad()
def fold_batch_norm(model: nn.Module) -> tuple[nn.Module, tuple[str, ...], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Fold every Conv2d -> BatchNorm2d (conv used once, feeding only the BN) into the conv; exact in eval mode.

    Returns (a folded copy in eval mode, folded conv names, ``{conv: (beta, |gamma|)}`` of the folded BNs:
    the mean and standard deviation the BN gave the pre-activation, used for high-bias absorption).
    """
    model = copy.deepcopy(model).eval()
    graph = trace(model).graph
    uses = _module_uses(graph)
    folded: list[str] = []
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(model.get_submodule(node.target), nn.BatchNorm2d):
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        source_name = cast(str, source.target)  # a call_module target is the module's name
        conv = model.get_submodule(source_name)
        bn = cast(nn.BatchNorm2d, model.get_submodule(node.target))  # checked above
        if not isinstance(conv, nn.Conv2d) or uses[source_name] != 1 or uses[node.target] != 1:
            continue
        if not bn.track_running_stats or bn.running_var is None:
            continue
        running_mean = bn.running_mean
        assert running_mean is not None  # a BN that tracks statistics has both running buffers
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_var)
        factor = gamma / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(factor.reshape(-1, 1, 1, 1))
        bias = _ensure_bias(conv)
        bias.copy_((bias - running_mean) * factor + beta)
        _set_module(model, node.target, nn.Identity())
        folded.append(source_name)
        stats[source_name] = (beta.detach().clone(), gamma.detach().abs().clone())
    return model, tuple(folded), stats


def _activation_kind(model: nn.Module, node: fx.Node) -> str | None:
    """relu / relu6 / clip / linear for a node that may sit between two layers; None = blocks the pair."""
    if node.op == "call_module":
        module = model.get_submodule(cast(str, node.target))  # a call_module target is the module's name
        if isinstance(module, nn.ReLU):
            return "relu"
        if isinstance(module, nn.ReLU6):
            return "relu6"
        if isinstance(module, ChannelClip):
            return "clip"
        if isinstance(module, _PASSTHROUGH_MODULES):
            return "linear"
        return None
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return "relu"
        if node.target in _PASSTHROUGH_FUNCTIONS:
            return "linear"
        return None
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return "relu"
    if node.op == "call_method" and node.target in _PASSTHROUGH_METHODS:
        return "linear"
    return None


def find_pairs(model: nn.Module) -> list[Pair]:
    """Layer pairs ``conv -> [act/pool/flatten]* -> conv|linear`` along single-use paths, in graph order."""
    graph = trace(model).graph
    uses = _module_uses(graph)
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or uses[node.target] != 1:
            continue
        first = model.get_submodule(node.target)
        if not _is_simple_conv(first):
            continue
        kinds: list[str] = []
        activation: str | None = None
        current = node
        while len(current.users) == 1:
            nxt = next(iter(current.users))
            if nxt.op == "call_module" and isinstance(model.get_submodule(nxt.target), (nn.Conv2d, nn.Linear)):
                second = model.get_submodule(nxt.target)
                if uses[nxt.target] == 1 and _accepts(first, second, kinds):
                    pairs.append(Pair(node.target, nxt.target, _combine(kinds), activation))
                break
            kind = _activation_kind(model, nxt)
            if kind is None:
                break
            if kind != "linear" and nxt.op == "call_module":
                activation = nxt.target
            kinds.append(kind)
            current = nxt
    return pairs


def _combine(kinds: list[str]) -> str:
    nonlinear = [k for k in kinds if k != "linear"]
    if not nonlinear:
        return "linear"
    if len(nonlinear) > 1:
        return "mixed"
    return nonlinear[0]


def _accepts(first: nn.Conv2d, second: nn.Module, kinds: list[str]) -> bool:
    channels = first.out_channels
    if _combine(kinds) == "mixed":
        return False
    if isinstance(second, nn.Linear):
        return second.in_features == channels
    return _is_simple_conv(second) and second.in_channels == channels


def _out_ranges(layer: _Layer) -> torch.Tensor:
    """Per-output-channel max |w|."""
    return layer.weight.detach().abs().reshape(layer.weight.shape[0], -1).amax(dim=1)


def _in_ranges(layer: _Layer) -> torch.Tensor:
    """Per-input-channel max |w| (depthwise: the channel's own filter)."""
    weight = layer.weight.detach().abs()
    if isinstance(layer, nn.Conv2d) and layer.groups > 1:
        return weight.reshape(weight.shape[0], -1).amax(dim=1)
    return weight.transpose(0, 1).reshape(weight.shape[1], -1).amax(dim=1)


@torch.no_grad()
def _scale_pair(model: nn.Module, pair: Pair, scale: torch.Tensor, stats: dict) -> None:
    """conv1 output channel i /= s_i, conv2 input channel i *= s_i (and the clip bound /= s_i)."""
    first = _layer(model, pair.first)
    second = _layer(model, pair.second)
    first.weight.div_(scale.reshape(-1, *([1] * (first.weight.dim() - 1))))
    if first.bias is not None:
        first.bias.div_(scale)
    if isinstance(second, nn.Conv2d) and second.groups > 1:
        second.weight.mul_(scale.reshape(-1, 1, 1, 1))
    else:
        second.weight.mul_(scale.reshape(1, -1, *([1] * (second.weight.dim() - 2))))
    if pair.kind == "clip":
        clip = _clip(model, pair)
        clip.upper.div_(scale.reshape(1, -1, 1, 1))
    if pair.first in stats:
        beta, sigma = stats[pair.first]
        stats[pair.first] = (beta / scale, sigma / scale)


def _prepare_relu6(model: nn.Module, pairs: list[Pair], mode: str) -> tuple[list[Pair], list[str]]:
    """Apply the ReLU6 policy; returns the pairs to equalize and the replaced activation names."""
    kept, replaced = [], []
    for pair in pairs:
        if pair.kind != "relu6":
            kept.append(pair)
            continue
        if mode == "skip" or pair.activation is None:
            continue
        channels = _layer(model, pair.first).weight.shape[0]
        if mode == "clip":
            _set_module(model, pair.activation, ChannelClip(channels))
            kept.append(Pair(pair.first, pair.second, "clip", pair.activation))
        else:
            _set_module(model, pair.activation, nn.ReLU())
            kept.append(Pair(pair.first, pair.second, "relu", pair.activation))
        replaced.append(pair.activation)
    return kept, replaced


@torch.no_grad()
def equalize(model: nn.Module, *, config: EqualizeConfig = EqualizeConfig()) -> tuple[nn.Module, EqualizeReport]:
    """BN folding, then cross-layer equalization to convergence, then high-bias absorption; on a copy."""
    folded_model, folded, stats = fold_batch_norm(model)
    pairs, replaced = _prepare_relu6(folded_model, find_pairs(folded_model), config.relu6)
    change, iterations = 0.0, 0
    for iterations in range(1, config.iterations + 1):  # noqa: B007 - the count after the loop is reported
        change = 0.0
        for pair in pairs:
            r1 = _out_ranges(_layer(folded_model, pair.first))
            r2 = _in_ranges(_layer(folded_model, pair.second))
            valid = (r1 > 0) & (r2 > 0)
            scale = torch.where(valid, torch.sqrt(r1 / torch.where(valid, r2, torch.ones_like(r2))), torch.ones_like(r1))
            _scale_pair(folded_model, pair, scale, stats)
            change = max(change, float(scale.log().abs().max()))
        if change < config.tolerance:
            break
    absorbed = absorb_high_bias(folded_model, pairs, stats, sigmas=config.absorb_sigmas) if config.absorb_bias else ()
    if hasattr(model, "input_shape"):
        folded_model.input_shape = model.input_shape
    report = EqualizeReport(
        folded=folded,
        pairs=tuple(pairs),
        iterations=iterations,
        final_change=change if pairs else 0.0,
        absorbed=tuple(absorbed),
        replaced=tuple(replaced),
        statistics=stats,
    )
    return folded_model, report


@torch.no_grad()
def absorb_high_bias(model: nn.Module, pairs: list[Pair], stats: dict, *, sigmas: float = 3.0) -> list[str]:
    """Move ``c = max(0, beta - sigmas*|gamma|)`` from conv1's bias into conv2's (ReLU/clip pairs, unpadded conv2)."""
    absorbed = []
    for pair in pairs:
        if pair.kind not in ("relu", "clip") or pair.first not in stats:
            continue
        second = _layer(model, pair.second)
        if isinstance(second, nn.Conv2d) and any(p != 0 for p in _padding(second)):
            continue
        beta, sigma = stats[pair.first]
        shift = torch.clamp(beta - sigmas * sigma, min=0.0)
        if pair.kind == "clip":
            clip = _clip(model, pair)
            shift = torch.minimum(shift, clip.upper.reshape(-1))
            clip.upper.sub_(shift.reshape(1, -1, 1, 1))
        if not bool((shift > 0).any()):
            continue
        first = _layer(model, pair.first)
        _ensure_bias(first).sub_(shift)
        weight = second.weight
        if isinstance(second, nn.Conv2d) and second.groups > 1:
            added = weight.reshape(weight.shape[0], -1).sum(dim=1) * shift
        else:
            added = weight.reshape(weight.shape[0], weight.shape[1], -1).sum(dim=2) @ shift
        _ensure_bias(second).add_(added)
        stats[pair.first] = (beta - shift, sigma)
        absorbed.append(pair.first)
    return absorbed


def _padding(conv: nn.Conv2d) -> tuple[int, ...]:
    if isinstance(conv.padding, str):
        return (0,) if conv.padding == "valid" else (1,)
    return tuple(conv.padding)


def channel_range_spread(layer: nn.Conv2d | nn.Linear) -> float:
    """max / min of the per-output-channel weight ranges (1 = uniform; inf if a channel is all zero)."""
    ranges = _out_ranges(layer)
    low = float(ranges.min())
    return math.inf if low == 0 else float(ranges.max()) / low
