"""Compare float vs quantized runs: metrics, tables, JSON and a Markdown/HTML report.  Light to import."""

from edgesep.validate.comparison import Comparison, ModelSummary, compare_runs
from edgesep.validate.metrics import LatencyStats, latency_stats, topk_accuracy

__all__ = ["Comparison", "LatencyStats", "ModelSummary", "compare_runs", "latency_stats", "topk_accuracy"]
