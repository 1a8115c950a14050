"""Distillation settings: a frozen, validated configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgesep.errors import InputError


@dataclass(frozen=True)
class DistillConfig:
    """Soft targets at ``temperature`` weighted ``alpha``, hard labels weighted ``1 - alpha``.

    Training matches ``edgesep.models.training`` (AdamW, one-cycle schedule, one thread) so a student
    distilled with ``alpha=0`` is exactly the same student trained on labels alone.  With ``checkpoint``
    set, the state is written there atomically after every epoch and a rerun resumes from it.
    """

    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 12
    lr: float = 0.01
    batch_size: int = 64
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise InputError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.epochs < 1 or self.batch_size < 1 or self.threads < 1:
            raise InputError("epochs, batch_size and threads must be >= 1")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["checkpoint"] = None if self.checkpoint is None else str(self.checkpoint)
        return payload

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint."""
        payload = self.to_dict()
        payload.pop("checkpoint")
        return payload
