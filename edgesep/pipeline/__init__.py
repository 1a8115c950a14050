"""`edgesep run`: the whole path from one config file, with cached steps."""

from edgesep.pipeline.config import DEFAULT_CONFIG, PipelineConfig, config_from_dict, load_config
from edgesep.pipeline.run import PipelineResult, RunOptions, StepOutcome, run

__all__ = [
    "DEFAULT_CONFIG",
    "PipelineConfig",
    "PipelineResult",
    "RunOptions",
    "StepOutcome",
    "config_from_dict",
    "load_config",
    "run",
]
