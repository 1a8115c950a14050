"""Structured channel pruning: a smaller dense nn.Module, not masks over zeros."""

from edgesep.prune.config import PruneConfig
from edgesep.prune.step import PruneResult, prune

__all__ = ["PruneConfig", "PruneResult", "prune"]
