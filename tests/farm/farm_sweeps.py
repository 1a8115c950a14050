"""Sweep configs the farm tests write: the digits default x 2 int8 recipes."""

from __future__ import annotations

from pathlib import Path

RECIPES = """
[[recipes]]
name = "int8"
mode = "int8"

[[recipes]]
name = "int8-percentile"
mode = "int8"
activation_range = "percentile"
"""


def write_sweep(folder: Path, *, devices: list[str], output: str = "out") -> Path:
    """The digits default x 2 int8 recipes x ``devices``, with a short validation (60 samples, 5 timed runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.toml"
    path.write_text(
        f'output = "{output}"\ndevices = {devices!r}\n'.replace("'", '"')
        + '\n[[models]]\nname = "digits"\nfactory = "default"\ninput_shape = [1, 1, 16, 16]\n'
        + RECIPES
        + "\n[calibration]\nsamples = 100\n\n[validate]\nsamples = 60\nruns = 5\nwarmup = 1\n",
        encoding="utf-8",
    )
    return path
