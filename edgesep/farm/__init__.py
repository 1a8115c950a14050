"""`edgesep farm`: a matrix of models x quantization recipes x devices run as Ray tasks (the optional extra
``farm``). Only :mod:`edgesep.farm.cluster` and the driver import ray, inside functions."""

from edgesep.farm.config import SweepConfig, SweepModel, SweepRecipe, load_sweep, sweep_from_dict

__all__ = ["SweepConfig", "SweepModel", "SweepRecipe", "load_sweep", "sweep_from_dict"]
