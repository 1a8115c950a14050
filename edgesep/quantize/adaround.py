"""AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization") on the int8 TFLite
model itself: any float source (ONNX, Keras), no PyTorch model needed.

Nearest rounding of each weight to its int8 grid is not the best rounding for the layer's output: the errors of
many weights add up in every output value.  For each CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED op with int8
weights, in execution order, the rounding direction of every weight (down or up from ``floor(W / s)``, ``W`` the
calibrated float model's weights, ``s`` the int8 weight scale of its channel) is learned so that the op's output
``act(conv(X, W_q) + b)`` on its dequantized int8 input ``X`` (the int8 model run on the calibration samples) is
closest (mean squared error) to the float model's same tensor.  Layer by layer (one pass over the samples per level
of weighted ops, int8_layers.py), so that each layer learns on inputs that every upstream layer's new rounding
already shaped.

The optimization is AdaRound's: a rectified sigmoid ``h(V)`` (zeta 1.1, gamma -0.1) per weight, started at the
weight's fractional part, ``W_soft = s * clamp(floor(W / s) + h(V), -127, 127)``, the loss ``mse + lambda * sum(1 -
|2h - 1| ** beta)`` with ``beta`` annealed from 20 to 2 after a warm-up without the regularizer, Adam; then the hard
rounding ``floor + (h >= 0.5)``.  The output is compared on a seeded subset of output positions (im2col rows) and
each iteration uses a batch of them, so one iteration costs milliseconds.  A layer keeps nearest rounding when the
learned one is not better on those positions.  Every weight stays within one step of nearest rounding and in
[-127, 127].

The int8 weight values are rewritten in place in the flatbuffer bytes (same sizes, same graph: the model's ops,
XNNPACK partitions and latency do not change); a weight buffer that several tensors share gets its own copy first
when its values change (the file then grows by that copy), and an op whose weight tensor other ops read too is
skipped.

Heavy: PyTorch, TensorFlow's flatbuffer schema and the interpreter; import lazily.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesep.convert.tflite_inspect import constant_data, own_buffers, read_model
from edgesep.errors import CalibrationError
from edgesep.quantize.int8_layers import WEIGHTED_OPS, WeightedOp, output_tensors, run_samples, weighted_ops
from edgesep.runners.interpreter import op_details, open_interpreter, tensor_detail

DEFAULT_MAX_SAMPLES = 32
DEFAULT_ITERATIONS = 400
DEFAULT_POSITIONS = 2048  # output positions (im2col rows) per layer the rounding is fitted on
BATCH = 256  # positions per iteration
ZETA, GAMMA = 1.1, -0.1
BETA_START, BETA_END, WARMUP = 20.0, 2.0, 0.2
REGULARIZATION = 0.01
LEARNING_RATE = 1e-2
ADAM_BETAS = (0.9, 0.999)
ON_GRID = 1e-3  # in weight steps: nothing to round
MAX_MISMATCH = 0.01  # a layer whose float weights round to other int8 values than the model's is not this model's
ACTIVATIONS = {0: None, 1: (0.0, math.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}  # TFLite fused activation -> clamp range


@dataclass(frozen=True)
class RoundedLayer:
    name: str
    op: str
    level: int
    loss_nearest: float  # output MSE vs float on the fitted positions with nearest rounding
    loss_adaround: float  # ... with the rounding kept (nearest's when the learned one was not better)
    channels_changed: int  # output channels with at least one weight rounded the other way
    channels: int
    weights_changed: float  # fraction of the layer's weights rounded the other way


@dataclass(frozen=True)
class AdaRoundReport:
    layers: tuple[RoundedLayer, ...]
    skipped: tuple[str, ...]  # "name (reason)"
    samples: int
    passes: int
    iterations: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's ``quantization.prepared.weight_rounding``."""
        return {
            "method": "adaround",
            "on": "int8 tflite",
            "samples": self.samples,
            "passes": self.passes,
            "iterations": self.iterations,
            "seconds": round(self.seconds, 2),
            "layers": [
                {
                    "name": layer.name,
                    "op": layer.op,
                    "level": layer.level,
                    "loss_nearest": layer.loss_nearest,
                    "loss_adaround": layer.loss_adaround,
                    "channels_changed": layer.channels_changed,
                    "channels": layer.channels,
                    "weights_changed": layer.weights_changed,
                }  # fmt: skip
                for layer in self.layers
            ],
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class _Layer:
    """One op to round: its geometry, constants and the positions its output is compared on."""

    target: WeightedOp
    weights: np.ndarray  # float, the int8 tensor's shape
    nearest: np.ndarray  # the model's int8 weights
    scales: np.ndarray  # per weight (broadcast to the weights' shape)
    bias: np.ndarray  # float per output channel (the dequantized int32 bias)
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]  # top, left
    multiplier: int  # depthwise channel multiplier
    clamp: tuple[float, float]  # fused activation and the int8 output's range
    positions: np.ndarray  # (samples, per sample) flat output positions
    out_width: int


def adaround_int8(
    quantized: bytes,
    float_model: bytes,
    samples: Sequence[Sequence[np.ndarray]],
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    iterations: int = DEFAULT_ITERATIONS,
    positions: int = DEFAULT_POSITIONS,
    seed: int = 0,
    progress: bool = False,
) -> tuple[bytes, AdaRoundReport]:
    """``quantized`` with its int8 weights rounded by AdaRound against ``float_model`` (the calibrated float model it
    was quantized from) on ``samples`` (float input lists in the TFLite layout; the first ``max_samples`` are used)."""
    started = time.perf_counter()
    samples = list(samples)[: max(1, int(max_samples))]
    if not samples:
        raise CalibrationError("no calibration samples for AdaRound")
    targets, skipped = weighted_ops(quantized, float_model, check=_check)
    layers = _layers(quantized, float_model, targets, skipped, count=len(samples), positions=positions, seed=seed)
    wanted = _float_outputs(float_model, samples, layers)
    model = bytearray(quantized)
    offsets = constant_data(model, "int8")
    rounded: list[RoundedLayer] = []
    levels = sorted({layer.target.level for layer in layers})
    import torch
    from tqdm import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread beats a pool (measured 3x on 2 shared cores)
    try:
        with tqdm(total=len(layers), desc="adaround", unit="layer", disable=not progress, leave=False) as bar:
            for level in levels:
                batch = [layer for layer in layers if layer.target.level == level]
                inputs = _int8_inputs(bytes(model), samples, batch)
                found = []
                for layer in batch:
                    output = layer.target.output
                    found.append(_round_layer(layer, inputs[output], wanted[output], iterations=iterations, seed=seed))
                    bar.update(1)
                current = bytes(model)  # a weight buffer other tensors share is copied before it changes (tensor indices stay)
                split = own_buffers(
                    current, {layer.target.weights for layer, (new, _) in zip(batch, found) if np.any(new != layer.nearest)}
                )
                if split is not current:
                    model, offsets = bytearray(split), constant_data(bytearray(split), "int8")
                for layer, (new, report) in zip(batch, found):
                    start, stop, _ = offsets[layer.target.weights]
                    model[start:stop] = new.astype(np.int8).tobytes()
                    rounded.append(report)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    return bytes(model), AdaRoundReport(tuple(rounded), tuple(skipped), len(samples), len(levels), int(iterations), seconds)


def _check(runner: Any, op: dict[str, Any]) -> str:
    """Why an op's weights cannot be rounded ("" when they can)."""
    inputs = [int(i) for i in op["inputs"]]
    data, weights, output = (tensor_detail(runner, i) for i in (inputs[0], inputs[1], int(op["outputs"][0])))
    if any(np.dtype(detail["dtype"]) != np.int8 for detail in (data, weights, output)):
        return "not int8 input, weights and output"
    if np.any(weights["quantization_parameters"]["zero_points"] != 0):
        return "asymmetric weights"
    if len(inputs) > 2 and inputs[2] >= 0 and np.dtype(tensor_detail(runner, inputs[2])["dtype"]) != np.int32:
        return "not an int32 bias"
    return ""


def _options(quantized: bytes) -> dict[int, Any]:
    """Op index -> builtin options object of the first subgraph."""
    model = read_model(quantized)
    return {index: operator.builtinOptions for index, operator in enumerate(model.subgraphs[0].operators)}


def _layers(quantized: bytes, float_model: bytes, targets: list[WeightedOp], skipped: list[str], *, count: int, positions: int,
            seed: int) -> list[_Layer]:  # fmt: skip
    runner = open_interpreter(quantized, xnnpack=False)
    float_runner = open_interpreter(float_model, xnnpack=False)
    float_weights = _float_weights(float_runner)
    options = _options(quantized)
    readers = Counter(int(i) for op in op_details(runner) for i in op["inputs"] if i >= 0)
    layers = []
    for target in targets:
        if readers[target.weights] > 1:
            skipped.append(f"{target.name} (its weights are read by {readers[target.weights]} ops)")
            continue
        detail = tensor_detail(runner, target.weights)
        nearest = runner.get_tensor(target.weights).astype(np.int64)
        weights = float_weights.get(target.float_name)
        if weights is None or weights.shape != nearest.shape:
            skipped.append(f"{target.name} (no float weights of the int8 weights' shape)")
            continue
        quant = detail["quantization_parameters"]
        scales = np.asarray(quant["scales"], np.float64)
        shape = [1] * nearest.ndim
        if len(scales) > 1:
            shape[int(quant["quantized_dimension"])] = len(scales)
        scales = np.broadcast_to(scales.reshape(shape), nearest.shape)
        mismatch = np.mean(np.clip(np.round(weights / scales), -127, 127) != nearest)
        if mismatch > MAX_MISMATCH:
            skipped.append(f"{target.name} (its float weights round to other int8 values in {mismatch:.0%} of places)")
            continue
        if np.abs(weights / scales - nearest).max() < ON_GRID:  # e.g. a per-channel scale as a 1x1 depthwise: +-127
            skipped.append(f"{target.name} (weights already on the int8 grid)")
            continue
        in_channels = int(tensor_detail(runner, target.input)["shape"][-1])
        if target.op == "CONV_2D" and nearest.shape[-1] != in_channels:
            skipped.append(f"{target.name} (grouped convolution)")
            continue
        option = options[target.index]
        activation = ACTIVATIONS.get(int(getattr(option, "fusedActivationFunction", 0)), "other")
        if activation == "other":
            skipped.append(f"{target.name} (fused activation other than ReLU, ReLU6, ReLU_N1_TO_1)")
            continue
        out = tensor_detail(runner, target.output)
        out_scale, out_zero = out["quantization"]
        low, high = (-128 - out_zero) * out_scale, (127 - out_zero) * out_scale
        if activation is not None:
            low, high = max(low, activation[0]), min(high, activation[1])
        channels = int(out["shape"][-1])
        bias = np.zeros(channels)
        if target.bias >= 0:
            bias_detail = tensor_detail(runner, target.bias)
            bias = runner.get_tensor(target.bias).astype(np.float64) * np.asarray(bias_detail["quantization_parameters"]["scales"])
        stride, dilation, padding = (1, 1), (1, 1), (0, 0)
        if target.op != "FULLY_CONNECTED":
            stride = (int(option.strideH), int(option.strideW))
            dilation = (int(option.dilationHFactor), int(option.dilationWFactor))
            padding = _padding(tensor_detail(runner, target.input)["shape"], out["shape"], nearest.shape[1:3], stride, dilation,
                               same=int(option.padding) == 0)  # fmt: skip
        rows = int(np.prod(out["shape"][:-1])) if target.op == "FULLY_CONNECTED" else int(out["shape"][1] * out["shape"][2])
        per_sample = min(rows, max(1, math.ceil(positions / count)))
        rng = np.random.default_rng([seed, target.index])  # per op: the same positions whichever ops are skipped
        chosen = np.stack([rng.choice(rows, per_sample, replace=False) for _ in range(count)])
        multiplier = channels // in_channels if target.op == "DEPTHWISE_CONV_2D" else 1
        layers.append(_Layer(target, weights.astype(np.float64), nearest, scales, bias, stride, dilation, padding, multiplier,
                             (float(low), float(high)), chosen, int(out["shape"][-2])))  # fmt: skip
    return layers


def _float_weights(runner: Any) -> dict[str, np.ndarray]:
    """Output tensor name -> float weights of each weighted op of the float model."""
    found = {}
    for op in op_details(runner):
        if op["op_name"] in WEIGHTED_OPS and len(op["inputs"]) > 1 and op["outputs"][0] >= 0:
            weights = int(op["inputs"][1])
            if np.dtype(tensor_detail(runner, weights)["dtype"]) == np.float32:
                try:
                    found[tensor_detail(runner, int(op["outputs"][0]))["name"]] = np.array(runner.get_tensor(weights))
                except ValueError:  # not a constant
                    continue
    return found


def _padding(in_shape, out_shape, kernel, stride, dilation, *, same: bool) -> tuple[int, int]:
    """Top and left padding of TFLite's SAME (the extra row or column goes to the bottom/right) or VALID."""
    if not same:
        return 0, 0
    pads = []
    for axis in (0, 1):
        extent = (int(kernel[axis]) - 1) * dilation[axis] + 1
        total = max((int(out_shape[1 + axis]) - 1) * stride[axis] + extent - int(in_shape[1 + axis]), 0)
        pads.append(total // 2)
    return pads[0], pads[1]


def _float_outputs(float_model: bytes, samples, layers: list[_Layer]) -> dict[int, np.ndarray]:
    """Int8 output tensor index -> the float model's output of that op at the layer's positions, (rows, channels)."""
    indices = output_tensors(float_model, {layer.target.float_name for layer in layers})
    rows: dict[int, list[np.ndarray]] = {layer.target.output: [] for layer in layers}

    def read(interpreter) -> None:
        sample = len(rows[layers[0].target.output]) if layers else 0
        for layer in layers:
            values = interpreter.get_tensor(indices[layer.target.float_name])
            flat = values.reshape(-1, values.shape[-1])
            rows[layer.target.output].append(flat[layer.positions[sample]].astype(np.float32))

    run_samples(float_model, samples, read)
    return {index: np.concatenate(found) for index, found in rows.items()}


def _int8_inputs(model: bytes, samples, layers: list[_Layer]) -> dict[int, np.ndarray]:
    """Int8 output tensor index -> the op's dequantized int8 input patches at the layer's positions: (rows, k) for
    CONV_2D and FULLY_CONNECTED, (rows, channels, kh*kw) for DEPTHWISE_CONV_2D (each output channel's input)."""
    runner = open_interpreter(model, xnnpack=False, allocate=False)
    grids = {layer.target.input: tensor_detail(runner, layer.target.input)["quantization"] for layer in layers}
    patches: dict[int, list[np.ndarray]] = {layer.target.output: [] for layer in layers}

    def read(interpreter) -> None:
        sample = len(patches[layers[0].target.output])
        for layer in layers:
            scale, zero_point = grids[layer.target.input]
            values = (interpreter.get_tensor(layer.target.input).astype(np.float32) - zero_point) * scale
            patches[layer.target.output].append(_patches(layer, values, layer.positions[sample]))

    run_samples(model, samples, read)
    return {index: np.concatenate(found) for index, found in patches.items()}


def _patches(layer: _Layer, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    if layer.target.op == "FULLY_CONNECTED":
        return values.reshape(-1, layer.weights.shape[1])[positions]
    kernel_h, kernel_w = layer.weights.shape[1:3]
    image = values[0]
    height, width, channels = image.shape
    top, left = layer.padding
    oy, ox = positions // layer.out_width, positions % layer.out_width
    ys = oy[:, None] * layer.stride[0] + np.arange(kernel_h)[None] * layer.dilation[0] - top  # (rows, kh)
    xs = ox[:, None] * layer.stride[1] + np.arange(kernel_w)[None] * layer.dilation[1] - left
    padded = np.zeros((height + 1, width + 1, channels), np.float32)  # index -1 and past-the-end read the zero row/column
    padded[:height, :width] = image
    ys = np.where((ys < 0) | (ys >= height), height, ys)
    xs = np.where((xs < 0) | (xs >= width), width, xs)
    found = padded[ys[:, :, None], xs[:, None, :]]  # (rows, kh, kw, channels)
    if layer.target.op == "CONV_2D":
        return found.reshape(len(positions), -1)
    found = found.reshape(len(positions), kernel_h * kernel_w, channels)
    return np.ascontiguousarray(found[:, :, np.arange(layer.weights.shape[3]) // layer.multiplier].transpose(0, 2, 1))


def _round_layer(layer: _Layer, inputs: np.ndarray, target: np.ndarray, *, iterations: int, seed: int) -> tuple[np.ndarray, RoundedLayer]:
    """The layer's int8 weights rounded by AdaRound (or its nearest rounding when that is not worse) and its report."""
    import torch

    from edgesep.quantize.adam import Adam  # torch-heavy, like this function

    generator = torch.Generator().manual_seed(seed)
    depthwise = layer.target.op == "DEPTHWISE_CONV_2D"
    weights, scales, nearest = layer.weights, layer.scales, layer.nearest
    if depthwise:  # (1, kh, kw, channels) -> (channels, kh*kw)
        flat = lambda a: a.reshape(-1, a.shape[-1]).T  # noqa: E731
    else:  # (out, kh, kw, in) or (out, in) -> (out, k)
        flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    w = torch.tensor(flat(weights / scales), dtype=torch.float32)
    s = torch.tensor(flat(scales), dtype=torch.float32)
    floor = torch.floor(w)
    low, high = (-127.0 - floor), (127.0 - floor)
    x = torch.tensor(inputs, dtype=torch.float32)
    y = torch.tensor(target, dtype=torch.float32)
    b = torch.tensor(layer.bias, dtype=torch.float32)
    bottom, top = layer.clamp

    def output(rows: torch.Tensor, integer: torch.Tensor) -> torch.Tensor:
        kernel = s * torch.clamp(floor + integer, floor + low, floor + high)
        z = (rows * kernel).sum(-1) if depthwise else rows @ kernel.T
        return torch.clamp(z + b, bottom, top)

    def loss_of(integer: torch.Tensor) -> float:
        with torch.no_grad():
            return float(((output(x, integer) - y) ** 2).mean())

    rest = (w - floor).clamp(1e-4, 1 - 1e-4)
    v = (-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)).requires_grad_(True)
    optimizer = Adam([v], lr=LEARNING_RATE, betas=ADAM_BETAS)  # not torch.optim: see adam.py
    warmup = int(WARMUP * iterations)
    for step in range(iterations):
        h = torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)
        pick = torch.randint(0, len(x), (min(BATCH, len(x)),), generator=generator)
        loss = ((output(x[pick], h) - y[pick]) ** 2).sum(-1).mean()
        if step >= warmup:
            progress = (step - warmup) / max(1, iterations - warmup)
            beta = BETA_END + 0.5 * (BETA_START - BETA_END) * (1 + math.cos(math.pi * progress))
            loss = loss + REGULARIZATION * (1 - (2 * h - 1).abs() ** beta).sum()
        (v.grad,) = torch.autograd.grad(loss, v)
        optimizer.step()
    hard = (v.detach() >= 0).float()
    base = torch.tensor(flat(nearest.astype(np.float64)), dtype=torch.float32) - floor
    loss_nearest, loss_adaround = loss_of(base), loss_of(hard)
    chosen = hard if loss_adaround < loss_nearest else base
    integer = torch.clamp(floor + chosen, -127, 127).numpy().astype(np.int64)
    integer = np.clip(integer, flat(nearest) - 1, flat(nearest) + 1)  # within one step of nearest, also where W / s was off
    new = integer.T.reshape(nearest.shape) if depthwise else integer.reshape(nearest.shape)
    changed = new != nearest
    per_channel = flat(changed).any(axis=1)
    report = RoundedLayer(layer.target.name, layer.target.op, layer.target.level, loss_nearest, min(loss_adaround, loss_nearest),
                          int(per_channel.sum()), len(per_channel), float(changed.mean()))  # fmt: skip
    return new, report
