"""Quantization-aware fine-tuning: a few epochs with fake-quant matching TFLite's int8, distilled from the float model.

``fine_tune(model, data, config=...)`` folds the BatchNorms (``equalize.fold_batch_norm``), traces the folded
copy with torch.fx and simulates what TFLite's full-integer quantizer will do to it:

* weights of every Conv2d / Linear: symmetric int8 in ``[-127, 127]``, ``scale = max|w| / 127`` per output
  channel (axis 0; the depthwise kernel's channel too), or per tensor when ``per_channel`` is False;
* activations: per-tensor asymmetric int8 in ``[-128, 127]`` from an EMA min/max observer (range widened to
  hold 0, ``scale = (max - min) / 255``, ``zero_point = round(-128 - min / scale)``) at the points TFLite writes
  an int8 tensor: the network input; the output of each Conv2d / Linear, or of the ReLU / ReLU6 that TFLite fuses
  into it (a conv, linear or add whose only user is a ReLU/ReLU6 module or ``F.relu``/``F.relu6``); the output of
  other activations (PReLU, Hardswish, ...), of adds/subs/muls/concats, of pooling and of ``.mean()``;
  sigmoid and softmax outputs on TFLite's fixed grid (scale 1/256, zero point -128), tanh on 1/128, 0.
  Shape-only ops (flatten, view, reshape, permute, dropout, identity) share their input's quantization and get
  none; ops not named here (e.g. ``torch.mean``, ``torch.matmul``) are left in float, so the simulation is
  coarser there.

Int32 biases are not simulated.  The observers start each epoch from the min/max of the float activations over
all calibration samples (TFLite's calibrator runs the float graph; order-independent) and follow the EMA of batch
min/max during it.  Both kinds go through
``torch.fake_quantize_per_channel_affine`` / ``fake_quantize_per_tensor_affine``: straight-through gradients
inside the range, zero outside.

Training signal: label-free distillation.  The float model's outputs on the calibration samples are the
targets; the loss is the MSE of each output divided by that output's variance over the samples (so a
box-regression head and a probability head weigh alike), summed over outputs.  Adam, seeded shuffling.
Afterwards the fake-quant is dropped: the result is the folded float module with adapted weights, which is
exported and calibrated as usual.  After each epoch the ranges are re-measured on all samples (as TFLite's
calibrator will) and the loss of the fake-int8 model is taken; the weights of the epoch with the lowest loss are
returned (epoch 0: the folded weights unchanged, when no epoch helps) - the loss jumps from epoch to epoch as
weights cross rounding steps and ranges move, so the last epoch is not always the best.
Heavy (torch at module level); import lazily.
"""

from __future__ import annotations

import copy
import operator
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils import parametrize

from edgesep.errors import CalibrationError, ConfigError
from edgesep.quantize.adam import Adam
from edgesep.quantize.equalize import fold_batch_norm, trace

WEIGHT_LEVELS = 127  # TFLite int8 weights: symmetric, [-127, 127]
ACTIVATION_MIN, ACTIVATION_MAX = -128, 127
_FUSED = (nn.ReLU, nn.ReLU6)
_FUSED_FUNCTIONS = {F.relu, torch.relu, F.relu6}
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.LeakyReLU, nn.Hardswish, nn.Hardsigmoid, nn.ELU, nn.SiLU, nn.GELU)
_FIXED = {nn.Softmax: (1 / 256, -128), nn.Sigmoid: (1 / 256, -128), nn.Tanh: (1 / 128, 0)}
_FIXED_FUNCTIONS = {F.softmax: (1 / 256, -128), torch.softmax: (1 / 256, -128), torch.sigmoid: (1 / 256, -128),
                    F.sigmoid: (1 / 256, -128), torch.tanh: (1 / 128, 0)}  # fmt: skip
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_FUNCTIONS = {operator.add, operator.sub, operator.mul, torch.add, torch.sub, torch.mul, torch.cat, torch.concat,
              F.relu, torch.relu, F.relu6, F.hardswish, F.leaky_relu, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}  # fmt: skip
_METHODS = {"add", "sub", "mul", "relu", "mean"}
_FUSING = {operator.add, torch.add}  # TFLite's ADD fuses a following ReLU/ReLU6 as conv/FC do


@dataclass(frozen=True)
class QatConfig:
    """``epochs`` over the calibration samples in batches of ``batch_size``; Adam with ``lr``; observers'
    EMA ``momentum``; ``per_channel`` weight scales (the recipe's); ``seed`` of the shuffling."""

    epochs: int = 3
    lr: float = 3e-5
    batch_size: int = 32
    momentum: float = 0.05
    per_channel: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0 or not 0 < self.momentum <= 1:
            raise ConfigError(f"invalid QatConfig: {self}")


@dataclass(frozen=True)
class QatReport:
    epochs: int
    samples: int
    lr: float
    weights: int  # Conv2d/Linear layers with fake-quantized weights
    activations: int  # fake-quantized activation points (input included)
    loss_before: float  # distillation loss of the fake-quantized model on the calibration samples
    loss_after: float  # the same at ``best_epoch``, whose weights are returned
    best_epoch: int  # 0: no epoch lowered the loss, the folded weights are returned unchanged
    epoch_losses: tuple[float, ...]  # the loss after each epoch
    float_loss_after: float  # the same loss of the returned model without fake-quant (how far its float form moved)
    seconds: float

    @property
    def kept(self) -> bool:
        """Whether the fine-tuned weights are kept (some epoch lowered the loss)."""
        return self.best_epoch > 0

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "samples": self.samples, "lr": self.lr, "weights": self.weights,
                "activations": self.activations, "loss_before": self.loss_before, "loss_after": self.loss_after,
                "best_epoch": self.best_epoch, "kept": self.kept, "epoch_losses": list(self.epoch_losses),
                "float_loss_after": self.float_loss_after, "seconds": self.seconds}  # fmt: skip


def weight_scale(weight: torch.Tensor, *, per_channel: bool) -> torch.Tensor:
    """TFLite's int8 weight scale: ``max|w| / 127`` per output channel (shape (C,)) or per tensor (shape (1,))."""
    bound = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1) if per_channel else weight.detach().abs().max().reshape(1)
    return torch.where(bound > 0, bound / WEIGHT_LEVELS, torch.ones_like(bound)).float()


def fake_quantize_weight(weight: torch.Tensor, *, per_channel: bool) -> torch.Tensor:
    """The int8 round trip TFLite applies to ``weight`` (straight-through gradient)."""
    scale = weight_scale(weight, per_channel=per_channel)
    if per_channel:
        zero = torch.zeros(len(scale), dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -WEIGHT_LEVELS, WEIGHT_LEVELS)
    return torch.fake_quantize_per_tensor_affine(weight, float(scale), 0, -WEIGHT_LEVELS, WEIGHT_LEVELS)


def activation_grid(low: float, high: float) -> tuple[float, int]:
    """(scale, zero point) of TFLite's asymmetric int8 for the range [low, high] (widened to hold 0)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        return 1.0, 0
    scale = (high - low) / (ACTIVATION_MAX - ACTIVATION_MIN)
    zero = int(np.clip(round(ACTIVATION_MIN - low / scale), ACTIVATION_MIN, ACTIVATION_MAX))
    return scale, zero


class WeightFakeQuant(nn.Module):
    """A parametrization of a Conv2d/Linear weight: its int8 round trip."""

    def __init__(self, *, per_channel: bool) -> None:
        super().__init__()
        self.per_channel = per_channel

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize_weight(weight, per_channel=self.per_channel)


class ActivationFakeQuant(nn.Module):
    """Per-tensor asymmetric int8 round trip; the range comes from an EMA of batch min/max while ``observing``
    (``fixed`` = (scale, zero point) instead: softmax/sigmoid/tanh outputs)."""

    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, *, momentum: float, fixed: tuple[float, int] | None = None) -> None:
        super().__init__()
        self.momentum = momentum
        self.fixed = fixed
        self.observing = True
        self.enabled = True  # False: observe only (the float activation passes through)
        self.seen = False
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed is not None:
            scale, zero = self.fixed
        else:
            if self.observing:
                low, high = x.detach().min(), x.detach().max()
                if self.seen:
                    low = self.low + self.momentum * (low - self.low)
                    high = self.high + self.momentum * (high - self.high)
                self.low.copy_(low)
                self.high.copy_(high)
                self.seen = True
            if not self.enabled:
                return x
            scale, zero = activation_grid(float(self.low), float(self.high))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, ACTIVATION_MIN, ACTIVATION_MAX)


def fine_tune(
    model: nn.Module,
    data: np.ndarray | None,
    *,
    teacher: nn.Module | None = None,
    config: QatConfig = QatConfig(),
    progress: bool = False,
) -> tuple[nn.Module, QatReport]:
    """A BN-folded copy of ``model`` fine-tuned for ``config.epochs`` with fake int8 to match the float outputs of
    ``teacher`` (default: ``model``) on ``data`` (NCHW float32 calibration samples); returned without fake-quant,
    in eval mode."""
    started = time.perf_counter()
    if data is None or len(data) == 0:
        raise CalibrationError("quantization-aware fine-tuning needs calibration data")
    inputs = torch.as_tensor(np.asarray(data, dtype=np.float32))
    teacher = copy.deepcopy(model if teacher is None else teacher).eval()
    student, _, _ = fold_batch_norm(model)
    if hasattr(model, "input_shape"):
        student.input_shape = model.input_shape
    for module in student.modules():
        if hasattr(module, "inplace"):
            module.inplace = False  # type: ignore[assignment]  # a fake-quant output must not be overwritten before backward
    with torch.no_grad():
        targets = _outputs(_batched(teacher, inputs, config.batch_size))
    spread = [t.var().clamp_min(1e-12) for t in targets]
    simulated, points = _insert_fake_quant(student, momentum=config.momentum)
    weights = _quantize_weights(student, per_channel=config.per_channel)  # shared with ``simulated``
    try:
        _observe(simulated, points, inputs, batch_size=config.batch_size)
        before = _loss_on(simulated, inputs, targets, spread, batch_size=config.batch_size)
        after, best_epoch, losses = _train(simulated, points, inputs, targets, spread, config=config, progress=progress)
    finally:
        for name in weights:
            parametrize.remove_parametrizations(student.get_submodule(name), "weight", leave_parametrized=False)
    float_after = _loss_on(student, inputs, targets, spread, batch_size=config.batch_size)
    report = QatReport(config.epochs, len(inputs), config.lr, len(weights), len(points), before, after, best_epoch,
                       tuple(losses), float_after, time.perf_counter() - started)  # fmt: skip
    return student.eval(), report


def _quantize_weights(model: nn.Module, *, per_channel: bool) -> list[str]:
    names = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for name in names:
        parametrize.register_parametrization(model.get_submodule(name), "weight", WeightFakeQuant(per_channel=per_channel))
    return names


def _module_kind(graph_module: fx.GraphModule, node: fx.Node) -> type | None:
    return type(graph_module.get_submodule(node.target)) if node.op == "call_module" and isinstance(node.target, str) else None


def _is_fused_activation(graph_module: fx.GraphModule, node: fx.Node) -> bool:
    kind = _module_kind(graph_module, node)
    if kind is not None:
        return issubclass(kind, _FUSED)
    return node.op == "call_function" and node.target in _FUSED_FUNCTIONS


def _consumer(graph_module: fx.GraphModule, node: fx.Node) -> fx.Node:
    """The node that takes ``node``'s output through any chain of sole Identity/Dropout users (a folded BN is an
    Identity); ``node`` itself when it has several users."""
    while len(node.users) == 1:
        user = next(iter(node.users))
        kind = _module_kind(graph_module, user)
        if kind is None or not issubclass(kind, (nn.Identity, nn.Dropout)):
            return user
        node = user
    return node


def _grid(graph_module: fx.GraphModule, node: fx.Node) -> tuple[bool, tuple[float, int] | None]:
    """(whether TFLite writes an int8 tensor at ``node``'s output, its fixed grid if any)."""
    kind = _module_kind(graph_module, node)
    if node.op == "placeholder":
        return True, None
    if kind is not None:
        for fixed_kind, grid in _FIXED.items():
            if issubclass(kind, fixed_kind):
                return True, grid
        fusing = issubclass(kind, (nn.Conv2d, nn.Linear))
        if not (fusing or issubclass(kind, _ACTIVATIONS + _POOLS)):
            return False, None
    elif node.op == "call_function" and node.target in _FIXED_FUNCTIONS:
        return True, _FIXED_FUNCTIONS[node.target]  # type: ignore[index]
    elif node.op == "call_function" and node.target in _FUNCTIONS:
        fusing = node.target in _FUSING
    elif node.op == "call_method" and node.target in _METHODS:
        fusing = node.target == "add"
    else:
        return False, None
    if fusing and _is_fused_activation(graph_module, _consumer(graph_module, node)):
        return False, None  # TFLite fuses the ReLU/ReLU6: the int8 tensor is the activation's output
    return True, None


def _insert_fake_quant(model: nn.Module, *, momentum: float) -> tuple[fx.GraphModule, list[ActivationFakeQuant]]:
    """The traced ``model`` (sharing its layers) with an ActivationFakeQuant after each point TFLite quantizes."""
    graph_module = trace(model)
    graph = graph_module.graph
    points: list[ActivationFakeQuant] = []
    for node in list(graph.nodes):
        quantized, fixed = _grid(graph_module, node)
        if not quantized:
            continue
        name = f"edgesep_fake_quant_{len(points)}"
        point = ActivationFakeQuant(momentum=momentum, fixed=fixed)
        graph_module.add_submodule(name, point)
        points.append(point)
        with graph.inserting_after(node):
            quant = graph.call_module(name, (node,))
        node.replace_all_uses_with(quant, delete_user_cb=lambda user, q=quant: user is not q)
    graph.lint()
    graph_module.recompile()
    return graph_module, points


def _outputs(result: Any) -> list[torch.Tensor]:
    """A model's outputs as a flat list of float tensors (a tensor, or a tuple/list of them)."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _outputs(item)]
    raise CalibrationError(f"quantization-aware fine-tuning needs a model that returns tensors, got {type(result).__name__}")


def _batched(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    parts = [_outputs(model(inputs[i : i + batch_size])) for i in range(0, len(inputs), batch_size)]
    return [torch.cat(column) for column in zip(*parts)]


def _distillation(outputs: list[torch.Tensor], targets: list[torch.Tensor], spread: list[torch.Tensor]) -> torch.Tensor:
    return sum((F.mse_loss(o, t) / s for o, t, s in zip(outputs, targets, spread)), torch.zeros(()))


@torch.no_grad()
def _observe(model: fx.GraphModule, points: list[ActivationFakeQuant], inputs: torch.Tensor, *, batch_size: int) -> None:
    """Set each observer to the min/max of its activation over all ``inputs`` in the float model (activations not
    fake-quantized: TFLite's calibrator runs the float graph), independent of the order of ``inputs``."""
    lows: list[float] = [np.inf] * len(points)
    highs: list[float] = [-np.inf] * len(points)
    for point in points:
        point.enabled = False
    for start in range(0, len(inputs), batch_size):
        for point in points:
            point.seen = False
        model(inputs[start : start + batch_size])
        for index, point in enumerate(points):
            lows[index] = min(lows[index], float(point.low))
            highs[index] = max(highs[index], float(point.high))
    for point, low, high in zip(points, lows, highs):
        point.low.fill_(low)
        point.high.fill_(high)
        point.seen = True
        point.enabled = True


@torch.no_grad()
def _loss_on(model: nn.Module, inputs: torch.Tensor, targets: list[torch.Tensor], spread: list[torch.Tensor], *, batch_size: int) -> float:
    """The distillation loss over all ``inputs`` with the observers frozen."""
    points = [m for m in model.modules() if isinstance(m, ActivationFakeQuant)]
    for point in points:
        point.observing = False
    outputs = _batched(model, inputs, batch_size)
    for point in points:
        point.observing = True
    return float(_distillation(outputs, targets, spread))


def _train(model, points, inputs, targets, spread, *, config: QatConfig, progress: bool) -> tuple[float, int, list[float]]:
    """Train ``config.epochs``; after each, re-measure the ranges on all ``inputs`` and the loss.  Leaves ``model``
    at the best epoch (0: the starting weights); returns (its loss, that epoch, the loss after each epoch)."""
    from tqdm import tqdm

    batch_size = config.batch_size
    _observe(model, points, inputs, batch_size=batch_size)  # the ranges TFLite's calibrator would measure
    best, best_epoch, best_state = _loss_on(model, inputs, targets, spread, batch_size=batch_size), 0, copy.deepcopy(model.state_dict())
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    losses: list[float] = []
    steps = config.epochs * -(-len(inputs) // batch_size)
    with tqdm(total=steps, desc="qat", unit="step", disable=not progress, leave=False) as bar:
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(len(inputs), generator=generator)
            for start in range(0, len(inputs), batch_size):
                batch = order[start : start + batch_size]
                loss = _distillation(_outputs(model(inputs[batch])), [t[batch] for t in targets], spread)
                loss.backward()
                optimizer.step()
                bar.set_postfix(epoch=epoch, loss=f"{float(loss.detach()):.4g}")
                bar.update()
            _observe(model, points, inputs, batch_size=batch_size)
            losses.append(_loss_on(model, inputs, targets, spread, batch_size=batch_size))
            if losses[-1] < best:
                best, best_epoch, best_state = losses[-1], epoch, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return best, best_epoch, losses
