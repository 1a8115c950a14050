"""The distill step: train a student on a teacher's soft targets plus hard labels, resumably."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.distill.config import DistillConfig
from edgesep.distill.loss import distillation_loss
from edgesep.errors import InputError, ShapeError
from edgesep.fileio import atomic_path
from edgesep.models.training import evaluate_accuracy, torch_threads, train_epoch

CHECKPOINT_FORMAT = "edgesep.distill-checkpoint/1"


@dataclass(frozen=True)
class DistillResult:
    model: Any  # the trained student (eval mode)
    epochs: int
    resumed_from_epoch: int  # 0 = fresh start
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    student_accuracy: float | None = None
    teacher_accuracy: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "resumed_from_epoch": self.resumed_from_epoch,
            "losses": list(self.losses),
            "student_accuracy": self.student_accuracy,
            "teacher_accuracy": self.teacher_accuracy,
            "seconds": self.seconds,
        }


def distill(
    student,
    teacher,
    data,
    *,
    config: DistillConfig = DistillConfig(),
    progress: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> DistillResult:
    """Train ``student`` in place against ``teacher`` on ``data`` (x_train/y_train/x_test/y_test arrays).

    The teacher is frozen (eval mode); its logits are computed once.  Raises ShapeError when teacher
    and student outputs differ in shape, InputError when a checkpoint belongs to another run.
    """
    import torch
    from tqdm import tqdm

    started = time.perf_counter()
    x_train = torch.from_numpy(np.ascontiguousarray(data.x_train, dtype=np.float32))
    y_train = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64))
    with torch_threads(config.threads):
        _check_shapes(student, teacher, x_train[:2])
        teacher.eval()
        with torch.no_grad():
            teacher_logits = torch.cat([teacher(x_train[i : i + 512]) for i in range(0, len(x_train), 512)])

        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        steps = (len(x_train) + config.batch_size - 1) // config.batch_size
        optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps)
        losses: list[float] = []
        start_epoch = 0
        if config.checkpoint is not None and Path(config.checkpoint).is_file():
            start_epoch, losses = _resume(config, student, optimizer, schedule, generator)

        bar = tqdm(total=config.epochs, initial=start_epoch, desc="distill", disable=not progress, leave=False)
        for epoch in range(start_epoch, config.epochs):
            losses.append(train_epoch(
                student, x_train, generator, batch_size=config.batch_size, optimizer=optimizer, schedule=schedule,
                batch_loss=lambda outputs, index: distillation_loss(
                    outputs, teacher_logits[index], y_train[index], temperature=config.temperature, alpha=config.alpha
                ),
            ))  # fmt: skip
            if config.checkpoint is not None:
                _save(config, student, optimizer, schedule, generator, epoch=epoch + 1, losses=losses)
            bar.update(1)
            if on_epoch is not None:
                on_epoch(epoch + 1, losses[-1])
        bar.close()
        student.eval()
        student_accuracy = evaluate_accuracy(student, data.x_test, data.y_test)
        teacher_accuracy = evaluate_accuracy(teacher, data.x_test, data.y_test)
    return DistillResult(
        model=student,
        epochs=config.epochs,
        resumed_from_epoch=start_epoch,
        losses=losses,
        student_accuracy=student_accuracy,
        teacher_accuracy=teacher_accuracy,
        seconds=time.perf_counter() - started,
    )


def _check_shapes(student, teacher, sample) -> None:
    import torch

    with torch.no_grad():
        was = student.training
        student.eval()
        try:
            s_out = student(sample)
            t_out = teacher.eval()(sample)
        except RuntimeError as error:
            raise ShapeError(f"student or teacher cannot run on inputs of shape {tuple(sample.shape)}: "
                             f"{str(error).splitlines()[0]}") from error  # fmt: skip
        finally:
            student.train(was)
    if tuple(s_out.shape) != tuple(t_out.shape):
        raise ShapeError(
            f"teacher output shape {tuple(t_out.shape)} differs from student output shape {tuple(s_out.shape)}; "
            "they must predict the same classes"
        )


def _architecture(model) -> dict[str, list[int]]:
    return {name: list(p.shape) for name, p in model.state_dict().items()}


def _save(config: DistillConfig, student, optimizer, schedule, generator, *, epoch: int, losses: list[float]) -> None:
    import torch

    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "losses": list(losses),
        "config": config.fingerprint(),
        "architecture": _architecture(student),
        "student": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    assert config.checkpoint is not None, "only called when checkpointing"
    with atomic_path(config.checkpoint, force=True) as tmp:
        torch.save(payload, tmp)


def _resume(config: DistillConfig, student, optimizer, schedule, generator) -> tuple[int, list[float]]:
    import torch

    assert config.checkpoint is not None, "only called when a checkpoint exists"
    path = Path(config.checkpoint)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"cannot read distillation checkpoint {path}: {str(error).splitlines()[0]}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an edgesep distillation checkpoint")
    if payload["config"] != config.fingerprint() or payload["architecture"] != _architecture(student):
        raise InputError(f"checkpoint {path} was written by a different run (config or student); remove it to restart")
    student.load_state_dict(payload["student"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    return int(payload["epoch"]), list(payload["losses"])
