"""The prune step: rank channels, remove the weakest from every prunable group, optionally fine-tune."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from edgesep.errors import InputError
from edgesep.prune.config import PruneConfig, kept_count
from edgesep.prune.cost import count_macs, count_params
from edgesep.prune.graph import analyze, prunable
from edgesep.prune.importance import CRITERIA
from edgesep.prune.surgery import apply_keep

MAX_SEARCH_RATIO = 0.99
SEARCH_STEPS = 14


@dataclass(frozen=True)
class PruneResult:
    model: Any  # the pruned, dense nn.Module (eval mode)
    ratio: float  # the ratio applied to every group (searched when a budget was given)
    kept_channels: dict[str, tuple[int, int]]  # first producer of each group -> (before, after)
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    input_shape: tuple[int, ...]
    accuracy_before: float | None = None
    accuracy_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "kept_channels": {k: list(v) for k, v in self.kept_channels.items()},
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "input_shape": list(self.input_shape),
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
        }


@dataclass(frozen=True)
class _Plan:
    groups: list  # prunable ChannelGroups
    importance: list  # one float64 tensor per group


def prune(
    model,
    *,
    config: PruneConfig = PruneConfig(),
    data=None,
    input_shape: tuple[int, ...] | None = None,
    progress: bool = False,
) -> PruneResult:
    """Return a smaller dense copy of ``model`` (the original is untouched).

    ``data`` (x_train, y_train, x_test, y_test arrays, e.g. ``load_digits_split()``) is used for
    fine-tuning and accuracy; with ``config.finetune_epochs > 0`` and no data, the built-in digits set.
    Runs on one torch thread (restored afterwards): tracing and counting are tiny, and on a busy machine
    more threads oversubscribe the cores.
    """
    from edgesep.models.training import torch_threads

    with torch_threads(1):
        return _prune(model, config=config, data=data, input_shape=input_shape, progress=progress)


def _prune(model, *, config: PruneConfig, data, input_shape: tuple[int, ...] | None, progress: bool) -> PruneResult:
    from edgesep.models.training import evaluate_accuracy

    shape = _input_shape(model, input_shape)
    base = copy.deepcopy(model).eval()
    groups = prunable(analyze(base, shape))
    if not groups:
        raise InputError(f"{type(model).__name__} has no prunable channels (no conv/linear chain off the model I/O)")
    modules = dict(base.named_modules())
    plan = _Plan(groups, [CRITERIA[config.criterion](g, modules) for g in groups])
    params_before, macs_before = count_params(base), count_macs(base, shape)

    if config.ratio is not None:
        ratio = config.ratio
    else:
        ratio = _search_ratio(base, plan, config, shape)
    pruned = _apply(base, plan, ratio, round_to=config.round_to)

    if config.finetune_epochs > 0 and data is None:
        from edgesep.data.digits import load_digits_split

        data = load_digits_split()
    accuracy_before = accuracy_after = None
    if data is not None:
        _check_data(shape, data)
        accuracy_before = evaluate_accuracy(copy.deepcopy(model), data.x_test, data.y_test)
        if config.finetune_epochs > 0:
            _finetune(pruned, data, config, progress=progress)
        accuracy_after = evaluate_accuracy(pruned, data.x_test, data.y_test)
    pruned.eval()
    pruned.input_shape = shape
    kept = {g.producers[0].name: (g.size, kept_count(g.size, ratio, round_to=config.round_to)) for g in groups}
    return PruneResult(
        model=pruned,
        ratio=ratio,
        kept_channels=kept,
        params_before=params_before,
        params_after=count_params(pruned),
        macs_before=macs_before,
        macs_after=count_macs(pruned, shape),
        input_shape=shape,
        accuracy_before=accuracy_before,
        accuracy_after=accuracy_after,
    )


def _finetune(model, data, config: PruneConfig, *, progress: bool) -> None:
    """Seeded fine-tuning with the same trainer as the digits default (one-cycle AdamW, one thread)."""
    from tqdm import tqdm

    from edgesep.models.training import TrainConfig, train_classifier

    train = TrainConfig(epochs=config.finetune_epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed)
    with tqdm(total=train.epochs, desc="prune fine-tune", disable=not progress, leave=False) as bar:
        train_classifier(model, data, config=train, on_epoch=lambda epoch, loss: bar.update(1))


def _input_shape(model, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    shape = input_shape or getattr(model, "input_shape", None)
    if shape is None:
        raise InputError(f"{type(model).__name__} has no input_shape attribute; pass input_shape=(1, C, H, W)")
    return (1, *tuple(int(d) for d in shape)[1:])


def _check_data(shape: tuple[int, ...], data) -> None:
    if tuple(data.x_test.shape[1:]) != tuple(shape[1:]):
        raise InputError(f"data samples have shape {tuple(data.x_test.shape[1:])}, the model expects {shape[1:]}")


def _apply(base, plan: _Plan, ratio: float, *, round_to: int):
    """A pruned deep copy of ``base``; plan groups refer to modules by name, so they fit the copy."""
    import torch

    pruned = copy.deepcopy(base)
    modules = dict(pruned.named_modules())
    for group, scores in zip(plan.groups, plan.importance):
        keep_n = kept_count(group.size, ratio, round_to=round_to)
        if keep_n >= group.size:
            continue
        order = torch.argsort(-scores, stable=True)[:keep_n]
        apply_keep(group, torch.sort(order).values, modules)
    return pruned


def _search_ratio(base, plan: _Plan, config: PruneConfig, shape: tuple[int, ...]) -> float:
    """Smallest ratio (bisection) whose pruned model fits ``max_params`` / ``max_macs``."""

    def fits(ratio: float) -> bool:
        candidate = _apply(base, plan, ratio, round_to=config.round_to)
        if config.max_params is not None:
            return count_params(candidate) <= config.max_params
        assert config.max_macs is not None  # a size target is max_params or max_macs
        return count_macs(candidate, shape) <= config.max_macs

    if fits(0.0):
        return 0.0
    if not fits(MAX_SEARCH_RATIO):
        budget = f"{config.max_params} parameters" if config.max_params is not None else f"{config.max_macs} MACs"
        raise InputError(f"cannot prune {type(base).__name__} below {budget}, even removing 99% of channels")
    low, high = 0.0, MAX_SEARCH_RATIO
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high
