"""Knowledge distillation: a small student learns from a bigger teacher's soft targets."""

from edgesep.distill.config import DistillConfig
from edgesep.distill.step import DistillResult, distill

__all__ = ["DistillConfig", "DistillResult", "distill"]
