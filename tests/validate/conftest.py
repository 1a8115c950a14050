"""Shared fixtures for the validate tests: RunResults-shaped objects built by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass
class FakeRun:
    """Has the fields of edgesep.validate.results.RunResults that a comparison reads."""

    tag: str
    model_name: str
    model_bytes: int
    latencies_ms: np.ndarray
    outputs: np.ndarray | None
    warmup: int = 5
    threads: int | None = 2
    device: dict = field(default_factory=lambda: {"cpu": "TestCPU", "cores": 2, "machine": "x86_64"})
    emulated: bool = False
    complete: bool = True
    error: str | None = None


@pytest.fixture
def fake_run():
    return FakeRun
