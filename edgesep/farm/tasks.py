"""What one Ray task does: an ``edgesep run`` of a stage's pipeline in a temporary folder on its node.

The task starts from the files of the stage it builds on (``seed``: relative path -> bytes, written into the
folder first, so the pipeline finds the earlier steps' outputs), runs the pipeline's steps for the stage and
returns the files it wrote, as bytes: results travel back to the head as return values, so the nodes share no
folder.  No ray import here: the driver wraps these functions as remote tasks.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from edgesep.errors import EdgesepError
from edgesep.pipeline import RunOptions, run
from edgesep.pipeline.config import PipelineConfig

Files = dict[str, bytes]
SUMMARIES = ("state.json", "summary.json", "report.md", "report.html", "accuracy_vs_latency.png")
"""The pipeline's own bookkeeping in the temporary folder: not stage artifacts (the head keeps its own state)."""


class StageError(EdgesepError):
    """An edgesep error raised in a task, as the head receives it: its one-line message and exit code. (Ray pickles
    a task's exception; the pipeline's own errors need not survive that, e.g. StepFailed takes (step, error).)"""

    def __init__(self, message: str, exit_code: int = 2, device_lost: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.device_lost = device_lost  # the device or its agent went away (devices.base.DeviceLostError)

    def __reduce__(self):
        return (StageError, (str(self), self.exit_code, self.device_lost))


def prepare(pipeline: PipelineConfig) -> dict[str, Any]:
    """Export (and the optional prune/distill) + convert: the float ONNX and TFLite models."""
    return _run(pipeline, {}, until="convert")


def quantize(pipeline: PipelineConfig, model_files: Files) -> dict[str, Any]:
    """Quantize with the stage's single recipe (``quantize.modes`` has one mode), from the prepared models."""
    return _run(pipeline, model_files, only="quantize", until="quantize")


def validate(pipeline: PipelineConfig, model_files: Files, quantized_files: Files) -> dict[str, Any]:
    """Validate float vs quantized on the stage's single device, exactly as ``edgesep run --only validate``."""
    return _run(pipeline, {**model_files, **quantized_files}, only="validate")


def _run(pipeline: PipelineConfig, seed: Files, *, until: str | None = None, only: str | None = None) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported in this worker
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgesep-farm-") as tmp:
        folder = Path(tmp)
        for relative, data in seed.items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        config = dataclasses.replace(pipeline, output=str(folder))
        try:
            result = run(config, options=RunOptions(until_step=until, only_step=only, progress=False))
        except EdgesepError as error:
            raise StageError(str(error), error.exit_code, bool(getattr(error, "device_lost", False))) from None
        files = {
            relative: path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file() and (relative := path.relative_to(folder).as_posix()) not in seed and relative not in SUMMARIES
        }
    return {"files": files, "rows": list(result.rows), "seconds": time.perf_counter() - started}
