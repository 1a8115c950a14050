"""The sweep's work as stages with cache keys: one ``prepare`` per model (export + convert), one ``quantize`` per
model x recipe, one ``validate`` per model x recipe x device (a cell).

Every stage is an ``edgesep run`` of a derived pipeline config; its key hashes its settings, the key of the stage it
builds on and the contents of the files it names (as ``edgesep run`` keys its steps), so a re-run does only the
stages whose inputs changed.  Artifacts live on the head under ``<output>/<model>/[<recipe>/]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from edgesep.farm.config import SweepConfig
from edgesep.models.default import default_checkpoint_path, load_default_model
from edgesep.pipeline.adapters import calibration_inputs
from edgesep.pipeline.cache import data_files, step_key
from edgesep.pipeline.config import PipelineConfig
from edgesep.pipeline.shrink import shrink_inputs

PREPARE, QUANTIZE, VALIDATE = "prepare", "quantize", "validate"


@dataclass(frozen=True)
class Stage:
    kind: str  # prepare | quantize | validate
    name: str
    """Its entry in ``<output>/state.json``: ``prepare/<model>``, ``quantize/<model>/<recipe>``, ``validate/<m>/<r>/<d>``."""
    folder: Path
    """Where its files land on the head (the pipeline output folder the stage's relative paths are under)."""
    pipeline: PipelineConfig
    key: str
    upstream: str | None = None
    """The name of the stage whose files this one starts from."""


@dataclass(frozen=True)
class Cell:
    model: str
    recipe: str
    device: str
    stage: Stage

    @property
    def label(self) -> str:
        return f"{self.model} / {self.recipe} / {self.device}"


@dataclass(frozen=True)
class Plan:
    stages: dict[str, Stage]
    cells: tuple[Cell, ...]


def make_plan(sweep: SweepConfig) -> Plan:
    from edgesep import __version__

    stages: dict[str, Stage] = {}
    cells: list[Cell] = []
    for model in sweep.models:
        base = dataclasses.replace(model.pipeline, devices=("local",))
        folder = sweep.output / model.name
        prepare_settings = {
            "edgesep": __version__,
            "model": dataclasses.asdict(base.model),
            "base_dir": base.base_dir,
            "prune": _asdict(base.prune),
            "distill": _asdict(base.distill),
            "convert": dataclasses.asdict(base.convert),
        }
        prepare = Stage(PREPARE, f"prepare/{model.name}", folder, base, step_key(prepare_settings, model_files(base)))
        stages[prepare.name] = prepare
        for recipe in sweep.recipes:
            quantized = recipe.apply(base)
            settings = {
                "prepare": prepare.key,
                "quantize": dataclasses.asdict(quantized.quantize),
                "calibration": dataclasses.asdict(quantized.calibration),
            }
            quantize = Stage(
                QUANTIZE,
                f"quantize/{model.name}/{recipe.name}",
                folder / recipe.name,
                quantized,
                step_key(settings, calibration_inputs(quantized)),
                upstream=prepare.name,
            )
            stages[quantize.name] = quantize
            for device in sweep.devices:
                cell_pipeline = dataclasses.replace(quantized, devices=(device,))
                settings = {"quantize": quantize.key, "device": device, "validate": dataclasses.asdict(cell_pipeline.validate)}
                validate = Stage(
                    VALIDATE,
                    f"validate/{model.name}/{recipe.name}/{device}",
                    quantize.folder,
                    cell_pipeline,
                    step_key(settings, validation_files(cell_pipeline)),
                    upstream=quantize.name,
                )
                stages[validate.name] = validate
                cells.append(Cell(model.name, recipe.name, device, validate))
    return Plan(stages=stages, cells=tuple(cells))


def model_files(config: PipelineConfig) -> list[Path]:
    """The files whose contents decide the exported and converted model (so editing them re-runs prepare)."""

    model = config.model
    files = [config.resolve(model.weights)] if model.weights else []
    if model.onnx is not None:
        files.append(config.resolve(model.onnx))
    elif model.factory == "default":
        files.append(_default_checkpoint())
    elif model.factory is not None and model.factory.rpartition(":")[0].endswith(".py"):
        files.append(config.resolve(model.factory.rpartition(":")[0]))
    for section in (config.prune, config.distill):
        if section is not None:
            files += shrink_inputs(config, section)
    return files


def validation_files(config: PipelineConfig) -> list[Path]:
    files: list[Path] = []
    for named in (config.validate.data, config.validate.labels):
        if named is not None and named != "digits":
            files += data_files(config.resolve(named))
    return files


def _default_checkpoint() -> Path:
    """The trained digits SepCNN's checkpoint (trained now if absent, as ``edgesep run`` does)."""

    path = default_checkpoint_path()
    if not path.is_file():
        load_default_model()
    return path


def _asdict(section) -> dict | None:
    return None if section is None else dataclasses.asdict(section)
