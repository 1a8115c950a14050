"""Fixtures for the prune tests (helpers live in prune_helpers.py)."""

from __future__ import annotations

import pytest
import torch
from prune_helpers import TinyResidual, randomize_bn


@pytest.fixture
def tiny_residual() -> TinyResidual:
    torch.manual_seed(0)
    return randomize_bn(TinyResidual(), seed=1)


@pytest.fixture
def sepcnn_model():
    from edgesep.models.sepcnn import sepcnn

    torch.manual_seed(0)
    return randomize_bn(sepcnn(), seed=2)
