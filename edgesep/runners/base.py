"""The runner base class: the context-manager protocol and per-inference timing."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from edgesep.errors import InputError, ShapeError

Feed = Mapping[str, np.ndarray] | np.ndarray


class Runner:
    """Subclasses implement ``_activate``, ``_deactivate`` and ``_infer(feed) -> dict``."""

    name = "runner"

    def __init__(self) -> None:
        self.is_active = False
        self.inference_times_ms: list[float] = []
        self.input_names: list[str] = []
        self.output_names: list[str] = []

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, *exc_info) -> None:
        self.deactivate()

    def activate(self) -> None:
        if self.is_active:
            raise RuntimeError(f"{self.name} is already active")
        self._activate()
        self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    @property
    def last_inference_ms(self) -> float | None:
        return self.inference_times_ms[-1] if self.inference_times_ms else None

    def infer(self, feed: Feed) -> dict[str, np.ndarray]:
        """Run once; ``feed`` is one array (single-input models) or ``{input name: array}``."""
        if not self.is_active:
            raise RuntimeError(f"{self.name} is not active: use it as a context manager or call activate()")
        named = self._name_feed(feed)
        started = time.perf_counter()
        outputs = self._infer(named)
        self.inference_times_ms.append((time.perf_counter() - started) * 1000.0)
        return outputs

    def _name_feed(self, feed: Feed) -> dict[str, np.ndarray]:
        if isinstance(feed, Mapping):
            missing = [name for name in self.input_names if name not in feed]
            if missing:
                raise InputError(f"{self.name}: feed lacks inputs {missing}; model inputs are {self.input_names}")
            return {name: np.asarray(feed[name]) for name in self.input_names}
        if len(self.input_names) != 1:
            raise InputError(f"{self.name}: model has inputs {self.input_names}; pass a dict")
        return {self.input_names[0]: np.asarray(feed)}

    def _activate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _deactivate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


def check_shape(name: str, value: np.ndarray, expected: list[int | None], *, runner: str) -> None:
    """Raise ShapeError unless ``value`` fits ``expected`` (None/-1 = any size)."""
    fits = value.ndim == len(expected) and all(e in (None, -1) or e == v for e, v in zip(expected, value.shape))
    if not fits:
        raise ShapeError(f"{runner}: input {name!r} has shape {list(value.shape)}, model expects {expected}")
