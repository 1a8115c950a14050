"""Compare float vs quantized runs: metrics, tables, JSON and a Markdown/HTML report.  Light to import."""

from edgesep.validate.comparison import Comparison, ModelSummary, compare_runs
from edgesep.validate.metrics import LatencyStats, latency_stats, topk_accuracy
from edgesep.validate.step import ValidationReport, check_accuracy_drop, validate

__all__ = [
    "Comparison",
    "LatencyStats",
    "ModelSummary",
    "ValidationReport",
    "check_accuracy_drop",
    "compare_runs",
    "latency_stats",
    "topk_accuracy",
    "validate",
]

from edgesep._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, "validate")
