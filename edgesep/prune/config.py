"""What to prune and how: a frozen, validated configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgesep.errors import InputError

CRITERIA = ("l1", "l2", "bn")
DEFAULT_RATIO = 0.5


@dataclass(frozen=True)
class PruneConfig:
    """A pruning target (at most one of ``ratio``, ``max_params``, ``max_macs``; none = ratio 0.5) and how to
    rank channels.

    ``ratio`` is the fraction of channels removed from every prunable channel group; a budget
    (``max_params`` / ``max_macs``) is met by searching the smallest ratio that fits it.  Kept channel
    counts are rounded to a multiple of ``round_to`` (never below ``round_to`` nor above the original).
    """

    ratio: float | None = None
    max_params: int | None = None
    max_macs: int | None = None
    criterion: str = "l1"
    round_to: int = 8
    finetune_epochs: int = 0
    lr: float = 0.01
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        targets = [t for t in (self.ratio, self.max_params, self.max_macs) if t is not None]
        if len(targets) > 1:
            raise InputError("give one pruning target: ratio, max_params or max_macs, not several")
        if not targets:
            object.__setattr__(self, "ratio", DEFAULT_RATIO)
        if self.ratio is not None and not 0.0 < self.ratio < 1.0:
            raise InputError(f"pruning ratio must be in (0, 1), got {self.ratio}")
        for name in ("max_params", "max_macs"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InputError(f"{name} must be positive, got {value}")
        if self.criterion not in CRITERIA:
            raise InputError(f"unknown pruning criterion {self.criterion!r}; expected one of {', '.join(CRITERIA)}")
        if self.round_to < 1:
            raise InputError(f"round_to must be >= 1, got {self.round_to}")
        if not self.lr > 0 or self.batch_size < 1:
            raise InputError(f"lr must be > 0 and batch_size >= 1, got {self.lr}, {self.batch_size}")
        if self.finetune_epochs < 0:
            raise InputError(f"finetune_epochs must be >= 0, got {self.finetune_epochs}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kept_count(channels: int, ratio: float, *, round_to: int) -> int:
    """Channels left after removing ``ratio`` of ``channels``, rounded to a multiple of ``round_to``."""
    wanted = channels * (1.0 - ratio)
    kept = round_to * max(1, int(wanted / round_to + 0.5))
    return min(kept, channels)
