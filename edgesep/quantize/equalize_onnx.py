"""Activation equalization on an ONNX graph, through HardSwish (issue #13: make layers quantization-friendly on
third-party graphs, where no PyTorch model is at hand).

int8 activations have one scale per tensor. When the channels of a tensor span very different ranges (measured on
PicoDet's stem: 0.2 to 67.6 over 16 channels), the small channels get a handful of int8 levels, and quantizing
that one tensor costs the layout detector 8 % of its box F1. Cross-layer equalization (Nagel et al. 2019) scales
channel ``c`` of such a tensor by ``1/s_c`` and multiplies the weights that read it by ``s_c``: exact in float,
but only through activations with ``f(x / s) = f(x) / s`` (ReLU, PReLU, none). The PPLCNet backbones of PP-OCR
and PicoDet put HardSwish there, which is not homogeneous; yet in the form our int8 lowering runs anyway,
``x * relu6(x + 3) / 6``, the gate can take the scale back: with ``x' = x / s``,

    hardswish(x) / s = x' * relu6(s * x' + 3) / 6

where ``relu6(s * x' + 3)`` is a 1x1 depthwise convolution (weight ``s``, bias 3) with a fused RELU6, so the int8
graph has the same three ops (DEPTHWISE_CONV_2D, MUL, MUL) as an unscaled HardSwish, all delegated to XNNPACK.

Pattern: ``Conv -> [Mul/Add by constants] -> act -> [Mul/Add by constants] -> Conv`` with every tensor between the
two convolutions read only by the next node (act: HardSwish, spelled out or not, Relu, PRelu, LeakyRelu; PP-OCR's
learnable affine blocks are the Mul/Add by constants). The producer's weights and bias, and every Add constant on
the way, are divided by ``s``; Mul constants are unchanged; the consumer's weights of input channel ``c`` are
multiplied by ``s_c``.

Scales from data: ``r_c`` = the larger of channel c's share of the largest absolute value of the activation's input
and of the tensor the consumer reads (per sample, averaged over up to 64 calibration samples, onnxruntime);
``s_c = r_c`` when the consumer is depthwise (its per-channel int8 weights take any scale for free),
``s_c = sqrt(r_c)`` otherwise (a pointwise consumer's per-output-channel weights share one scale across input
channels: half the equalization is moved there, as CLE balances weights and activations). Every ``s_c <= 1``:
small channels are raised towards the largest, none beyond it. The rewritten graph is run against the original
in onnxruntime on the samples and refused (ToleranceError) beyond 1e-3 of an output's scale
(numerics.check_stacked: with its absolute floor for outputs near zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgesep.convert.fusions import GraphIndex, graph_index, hardswish_matches, replace_nodes
from edgesep.errors import CalibrationError
from edgesep.numerics import check_stacked

HOMOGENEOUS = ("Relu", "PRelu", "LeakyRelu")  # f(x / s) = f(x) / s for s > 0
AFFINE = ("Mul", "Add")
MIN_SCALE = 1e-3  # a channel is amplified at most 1000x
POINTWISE_EXPONENT = 0.5
TOLERANCE = 1e-3  # of each output's scale (numerics.check_stacked)
PROBE_SAMPLES = 64


@dataclass(frozen=True)
class EqualizedPair:
    producer: str
    consumer: str
    activation: str
    channels: int
    depthwise_consumer: bool
    min_scale: float  # the smallest s_c (the most amplified channel)


@dataclass(frozen=True)
class ActivationEqualization:
    """What ``equalize_activations`` did (the sidecar's ``quantization.prepared.activation_equalization``)."""

    pairs: tuple[EqualizedPair, ...]
    samples: int
    max_relative_error: float  # equalized vs original graph in onnxruntime, of the output's scale

    def to_dict(self) -> dict[str, Any]:
        return {"activation_equalization": {"pairs": [asdict(pair) for pair in self.pairs], "samples": self.samples,
                                            "max_relative_error": self.max_relative_error}}  # fmt: skip


@dataclass(frozen=True)
class _Chain:
    producer: Any  # Conv
    before: tuple[Any, ...]  # Mul/Add by constants between the producer and the activation
    activation: str
    activation_nodes: tuple[Any, ...]
    activation_input: str
    after: tuple[Any, ...]  # Mul/Add by constants between the activation and the consumer
    consumer: Any  # Conv
    consumer_input: str


def equalize_activations(model, samples: Sequence[Mapping[str, np.ndarray]]) -> tuple[Any, ActivationEqualization]:
    """A copy of ``model`` (onnx.ModelProto, runnable by onnxruntime) with the activations between convolution
    pairs equalized per channel, and what was done. ``samples`` are feeds (input name -> NCHW batch of one) from
    the calibration data."""
    import onnx

    if not samples:
        raise CalibrationError("activation equalization needs calibration samples")
    equalized = onnx.ModelProto()
    equalized.CopyFrom(model)
    index = graph_index(equalized)
    chains = _chains(equalized, index)
    if not chains:
        return equalized, ActivationEqualization((), len(samples), 0.0)
    probes = sorted({name for chain in chains for name in (chain.activation_input, chain.consumer_input)})
    ranges = _channel_ranges(model, samples[:PROBE_SAMPLES], probes)
    pairs, replacements, dead = [], {}, set[int]()
    for number, chain in enumerate(chains):
        scales, depthwise = _scales(chain, ranges, index)
        _rescale(equalized, index, chain, scales)
        if chain.activation == "HardSwish":
            first, *rest = chain.activation_nodes
            replacements[id(first)] = _scaled_hardswish(equalized, chain, scales, number)
            dead.update(id(node) for node in rest)
        pairs.append(EqualizedPair(chain.producer.name, chain.consumer.name, chain.activation, len(scales), depthwise,
                                   float(scales.min())))  # fmt: skip
    replace_nodes(equalized, replacements, dead)
    error = _check_same_outputs(model, equalized, samples[:4])
    return equalized, ActivationEqualization(tuple(pairs), min(len(samples), PROBE_SAMPLES), error)


def _chains(model, index: GraphIndex) -> list[_Chain]:
    activations = {match.y: (match.x, "HardSwish", match.nodes) for match in hardswish_matches(model, index)}
    for node in model.graph.node:
        if node.op_type in HOMOGENEOUS and all(name in index.constants for name in node.input[1:]):
            activations[node.output[0]] = (node.input[0], node.op_type, (node,))
    chains = []
    for y, (x, kind, nodes) in activations.items():
        inside = {id(node) for node in nodes}
        if x in index.outputs or any(id(reader) not in inside for reader in index.readers.get(x, [])):
            continue  # the activation's input feeds something else too
        before, tensor = [], x
        while (node := index.producer.get(tensor)) is not None and node.op_type in AFFINE and _affine_operand(index, node):
            source = next(name for name in node.input if name not in index.constants)
            if index.only_reader(source) is not node:
                break
            before.append(node)
            tensor = source
        producer: Any = index.producer.get(tensor)
        after, tensor = [], y
        while (node := index.only_reader(tensor)) is not None and node.op_type in AFFINE and _affine_operand(index, node):
            after.append(node)
            tensor = node.output[0]
        consumer: Any = index.only_reader(tensor)
        if not (_is_conv(index, producer) and _is_conv(index, consumer)) or consumer.input[0] != tensor:
            continue
        channels = index.constants[producer.input[1]].shape[0]
        owned = [name for name in (*producer.input[1:], consumer.input[1]) if name]
        if any(len(index.readers.get(name, [])) != 1 for name in owned):
            continue  # a weight shared with another node
        if not all(_per_channel(index.constants[str(_affine_operand(index, node))], channels) for node in before + after):
            continue
        chains.append(_Chain(producer, tuple(reversed(before)), kind, tuple(nodes), x, tuple(after), consumer, tensor))
    return chains


def _is_conv(index: GraphIndex, node) -> bool:
    return node is not None and node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in index.constants


def _affine_operand(index: GraphIndex, node) -> str | None:
    """The constant operand of a binary Mul/Add whose other operand is a tensor."""
    constants = [name for name in node.input if name in index.constants]
    return constants[0] if len(node.input) == 2 and len(constants) == 1 else None


def _channel_ranges(model, samples: Sequence[Mapping[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    """Per channel of each named tensor: the mean over the samples of its largest |value| in the sample (robust to
    one outlier image, which the per-tensor int8 range clips anyway)."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {output.name for output in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = _session(probe)
    totals: dict[str, np.ndarray] = {}
    for feed in samples:
        for name, value in zip(names, session.run(names, dict(feed))):
            channels = np.abs(np.asarray(value, np.float64)).max(axis=tuple(i for i in range(value.ndim) if i != 1))
            totals[name] = channels if name not in totals else totals[name] + channels
    return {name: total / len(samples) for name, total in totals.items()}


def _scales(chain: _Chain, ranges: Mapping[str, np.ndarray], index: GraphIndex) -> tuple[np.ndarray, bool]:
    weight = index.constants[chain.consumer.input[1]]
    channels = len(ranges[chain.activation_input])
    group = _group(chain.consumer)
    depthwise = group == channels and weight.shape[1] == 1
    shares = [values / values.max() if values.max() > 0 else np.ones_like(values)
              for values in (ranges[chain.activation_input], ranges[chain.consumer_input])]  # fmt: skip
    ratio = np.maximum(*shares)
    scales = ratio if depthwise else ratio**POINTWISE_EXPONENT
    scales = np.where(ratio > 0, np.clip(scales, MIN_SCALE, 1.0), 1.0)
    return scales.astype(np.float32), depthwise


def _group(node) -> int:
    return next((attribute.i for attribute in node.attribute if attribute.name == "group"), 1)


def _rescale(model, index: GraphIndex, chain: _Chain, scales: np.ndarray) -> None:
    channels = len(scales)
    per_channel = scales.reshape(1, channels, 1, 1)
    weight = index.constants[chain.producer.input[1]]
    _set_constant(model, index, chain.producer.input[1], weight / scales.reshape(-1, *([1] * (weight.ndim - 1))))
    if len(chain.producer.input) > 2 and chain.producer.input[2]:
        _set_constant(model, index, chain.producer.input[2], index.constants[chain.producer.input[2]] / scales)
    for node in chain.before + chain.after:
        if node.op_type == "Add":
            name = _affine_operand(index, node)
            assert name is not None
            value = np.broadcast_to(index.constants[name].reshape(-1), (channels,)).reshape(per_channel.shape)
            _bind_constant(model, index, node, name, value / per_channel)
    consumer = index.constants[chain.consumer.input[1]]
    group = _group(chain.consumer)
    outputs_per_group, inputs_per_group = consumer.shape[0] // group, consumer.shape[1]
    channel = (np.arange(consumer.shape[0])[:, None] // outputs_per_group) * inputs_per_group + np.arange(inputs_per_group)[None, :]
    _set_constant(model, index, chain.consumer.input[1], consumer * scales[channel].reshape(*channel.shape, *([1] * (consumer.ndim - 2))))


def _per_channel(value: np.ndarray, channels: int) -> bool:
    """A scalar, or one value per channel of an NCHW tensor ([C, 1, 1], [1, C, 1, 1])."""
    return value.size == 1 or (value.size == channels and value.ndim >= 3 and value.shape[-3] == channels)


def _scaled_hardswish(model, chain: _Chain, scales: np.ndarray, number: int) -> list[Any]:
    """``x' * clip(conv1x1(x', s, 3), 0, 6) / 6``: HardSwish of ``s * x'``, divided by ``s``."""
    from onnx import helper, numpy_helper

    channels, prefix = len(scales), f"edgesep_equalized_hardswish_{number}"
    constants = {"weight": scales.reshape(channels, 1, 1, 1), "bias": np.full(channels, 3.0), "low": np.array(0.0),
                 "high": np.array(6.0), "six": np.array(6.0)}  # fmt: skip
    model.graph.initializer.extend(numpy_helper.from_array(value.astype(np.float32), f"{prefix}/{key}") for key, value in constants.items())
    x, y = chain.activation_input, chain.activation_nodes[-1].output[0]
    return [
        helper.make_node(
            "Conv",
            [x, f"{prefix}/weight", f"{prefix}/bias"],
            [f"{prefix}/gate"],
            group=channels,
            kernel_shape=[1, 1],
            name=f"{prefix}/gate",
        ),  # fmt: skip
        helper.make_node("Clip", [f"{prefix}/gate", f"{prefix}/low", f"{prefix}/high"], [f"{prefix}/relu6"], name=f"{prefix}/relu6"),
        helper.make_node("Mul", [x, f"{prefix}/relu6"], [f"{prefix}/product"], name=f"{prefix}/product"),
        helper.make_node("Div", [f"{prefix}/product", f"{prefix}/six"], [y], name=f"{prefix}/sixth"),
    ]


def _set_constant(model, index: GraphIndex, name: str, value: np.ndarray) -> None:
    """Overwrite an initializer (read by this chain only: checked in ``_chains``)."""
    from onnx import numpy_helper

    target = next(init for init in model.graph.initializer if init.name == name)
    target.CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))
    index.constants[name] = np.asarray(value, np.float32)


def _bind_constant(model, index: GraphIndex, node, old: str, value: np.ndarray) -> None:
    """Give ``node`` its own new constant in place of ``old`` (which other nodes may share)."""
    from onnx import numpy_helper

    name = f"{old}/equalized/{node.name or node.output[0]}"
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
    index.constants[name] = np.asarray(value, np.float32)
    node.input[list(node.input).index(old)] = name


def _session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _check_same_outputs(original, equalized, samples: Sequence[Mapping[str, np.ndarray]]) -> float:
    """The equalized graph's outputs against the original's in onnxruntime (the one comparator: relative to
    each output's scale, with numerics' absolute floor for outputs near zero); ToleranceError beyond
    ``TOLERANCE``. Returns the largest error relative to an output's scale."""
    before, after = _session(original), _session(equalized)
    names = [output.name for output in original.graph.output]
    references = [before.run(names, dict(feed)) for feed in samples]
    candidates = [after.run(names, dict(feed)) for feed in samples]
    fidelity = check_stacked(references, candidates, tolerance=TOLERANCE, what="activation equalization changed the model's outputs",
                             names=names)  # fmt: skip
    return float(fidelity.relative)
