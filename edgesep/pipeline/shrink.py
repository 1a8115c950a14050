"""The optional shrink steps of ``edgesep run``: ``[prune]`` and ``[distill]`` before export.

Each writes an ``edgesep.pruned/1`` checkpoint (``edgesep.prune.checkpoint``, loadable with
``weights_only=True``) into the output folder; export then uses the last one written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesep.distill import distill
from edgesep.models.loading import load_factory, load_weights
from edgesep.pipeline.config import DistillSection, PipelineConfig, PruneSection, shrink_config
from edgesep.prune import prune
from edgesep.prune.checkpoint import load_pruned, read_checkpoint, resolve_model, save_pruned
from edgesep.prune.data import load_labeled


def shrink_inputs(config: PipelineConfig, section: PruneSection | DistillSection) -> list[Path]:
    """Files besides the model whose contents decide the step's result (data, teacher)."""
    inputs = [] if section.data == "digits" else [config.resolve(section.data)]
    if isinstance(section, DistillSection):
        if section.teacher_weights:
            inputs.append(config.resolve(section.teacher_weights))
        teacher_file = section.teacher.rpartition(":")[0]
        if teacher_file.endswith(".py"):
            inputs.append(config.resolve(teacher_file))
        if section.teacher == "default":
            inputs.append(_default_teacher_checkpoint())
    return inputs


def run_prune(config: PipelineConfig, source: str | Path, target: Path, *, progress: bool = False) -> dict[str, Any]:
    """Prune the model ``source`` (factory reference or checkpoint) per ``[prune]``; write ``target``."""

    section = config.prune
    assert section is not None, "run_prune needs a [prune] section"
    prune_config = shrink_config(section)
    module, factory = _load(config, source)
    data = load_labeled(_data(config, section.data)) if section.finetune_epochs > 0 or section.data != "digits" else None
    result = prune(module, config=prune_config, data=data, input_shape=config.model.input_shape, progress=progress)
    summary = {**result.to_dict(), "config": prune_config.to_dict()}
    save_pruned(result.model, target, source=factory, input_shape=result.input_shape, summary=summary, force=True)
    return summary


def run_distill(config: PipelineConfig, source: str | Path, target: Path, *, progress: bool = False) -> dict[str, Any]:
    """Distill ``[distill].teacher`` into the model ``source`` (factory reference or checkpoint); write ``target``."""
    import torch

    from edgesep.distill.teacher import TEACHER_FACTORY

    section = config.distill
    assert section is not None, "run_distill needs a [distill] section"
    distill_config = shrink_config(section)
    data = load_labeled(_data(config, section.data))
    teacher_ref = TEACHER_FACTORY if section.teacher == "default" else _reference(config, section.teacher)
    teacher, _ = resolve_model(teacher_ref, weights=config.resolve(section.teacher_weights))
    torch.manual_seed(section.seed)
    student, factory = _load(config, source)
    shape = tuple(config.model.input_shape or getattr(student, "input_shape", None) or data.x_test[:1].shape)
    result = distill(student, teacher, data, config=distill_config, progress=progress)
    summary = {**result.to_dict(), "config": distill_config.to_dict(), "teacher": teacher_ref}
    save_pruned(result.model, target, source=factory, input_shape=(1, *shape[1:]), summary={"distill": summary}, force=True)
    return summary


def _load(config: PipelineConfig, source: str | Path):
    """``(module, factory reference)`` from a previous shrink checkpoint or the [model] factory + weights."""

    if isinstance(source, Path):
        module = load_pruned(source)
        payload = read_checkpoint(source)
        assert payload is not None  # load_pruned checked the format
        return module, payload["source"]
    module = load_factory(source)
    if config.model.weights:
        load_weights(module, config.resolve(config.model.weights))
    return module.eval(), source


def _reference(config: PipelineConfig, reference: str) -> str:
    location, _, name = reference.rpartition(":")
    return f"{config.resolve(location)}:{name}" if location.endswith(".py") else reference


def _data(config: PipelineConfig, data: str) -> str:
    return data if data == "digits" else str(config.resolve(data))


def _default_teacher_checkpoint() -> Path:
    """The default teacher's cached weights (trained now if absent), so retraining it re-runs distill."""
    from edgesep.distill.teacher import load_default_teacher, teacher_checkpoint_path

    path = teacher_checkpoint_path()
    if not path.is_file():
        load_default_teacher()
    return path
