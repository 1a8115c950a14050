"""Compare float vs quantized runs: metrics, tables, JSON and a Markdown/HTML report.  Light to import."""

from edgesep.validate.bench import BenchReport, benchmark
from edgesep.validate.comparison import Comparison, ModelSummary, compare_runs
from edgesep.validate.metrics import LatencyStats, latency_stats, topk_accuracy
from edgesep.validate.multi import MultiDeviceReport, validate_on_devices
from edgesep.validate.step import (
    ValidationReport,
    check_accuracy_drop,
    check_drop,
    compare_results,
    validate,
    validate_variants,
)

__all__ = [
    "BenchReport",
    "Comparison",
    "LatencyStats",
    "ModelSummary",
    "MultiDeviceReport",
    "ValidationReport",
    "benchmark",
    "check_accuracy_drop",
    "check_drop",
    "compare_results",
    "compare_runs",
    "latency_stats",
    "topk_accuracy",
    "validate",
    "validate_on_devices",
    "validate_variants",
]

from edgesep._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, "validate")
