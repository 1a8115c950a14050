"""``edgesep distill``: train a student against a teacher's soft targets on the digits set."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.cli.parsing import resolve_model_reference
from edgesep.fileio import check_output
from edgesep.prune.checkpoint import resolve_model, save_pruned

DEFAULT_STUDENT = "edgesep.models.sepcnn:sepcnn"


@app.command("distill")
def distill_command(
    student: str = typer.Argument(
        DEFAULT_STUDENT, help="Student: 'file.py:factory', 'package.module:factory', or a pruned .pt checkpoint."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="The student checkpoint (.pt) to write."),
    teacher: str = typer.Option(
        "default", "--teacher", help="Teacher factory; 'default' = the standard-conv digits CNN (trained, cached)."
    ),
    teacher_weights: Path = typer.Option(None, "--teacher-weights", help="State dict for the teacher factory."),
    weights: Path = typer.Option(None, "--weights", help="Initial state dict for the student factory."),
    data: str = typer.Option("digits", "--data", help="'digits' or a .npz with x_train, y_train, x_test, y_test (NCHW float32)."),
    epochs: int = typer.Option(12, "--epochs", help="Training epochs."),
    temperature: float = typer.Option(4.0, "--temperature", "-T", help="Softmax temperature of the soft targets."),
    alpha: float = typer.Option(0.7, "--alpha", help="Weight of the soft-target loss (0 = labels only)."),
    lr: float = typer.Option(0.01, "--lr", help="Peak learning rate (one-cycle AdamW)."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation order and shuffling."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", help="Per-epoch resume checkpoint (default: <output>.ckpt); a rerun resumes from it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Distill a teacher into a (small, maybe pruned) student on the digits set or your .npz."""
    from edgesep.distill import DistillConfig, distill
    from edgesep.distill.teacher import TEACHER_FACTORY
    from edgesep.prune.data import load_labeled

    checkpoint = checkpoint or output.with_name(output.name + ".ckpt")
    config = DistillConfig(
        temperature=temperature, alpha=alpha, epochs=epochs, lr=lr, seed=seed, checkpoint=checkpoint
    )  # fmt: skip
    check_output(output, force=force)
    labeled = load_labeled(data)
    teacher_ref = TEACHER_FACTORY if teacher == "default" else resolve_model_reference(teacher)
    teacher_model, _ = resolve_model(teacher_ref, weights=teacher_weights)
    _seed(seed)
    student_model, source = resolve_model(resolve_model_reference(student), weights=weights)
    shape = tuple(getattr(student_model, "input_shape", (1, 1, 16, 16)))
    result = distill(student_model, teacher_model, labeled, config=config, progress=progress_enabled())
    summary = {**result.to_dict(), "config": config.to_dict(), "teacher": teacher_ref}
    save_pruned(result.model, output, source=source, input_shape=shape, summary={"distill": summary}, force=force)
    if as_json:
        typer.echo(json.dumps({"path": str(output), "source": source, **summary}, indent=2))
        return
    echo(f"distilled {teacher_ref} -> {source} ({epochs} epochs, T={temperature}, alpha={alpha})")
    typer.echo(
        f"student accuracy {result.student_accuracy:.4f}, teacher accuracy {result.teacher_accuracy:.4f}"
        + (f" (resumed at epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else "")
    )
    echo(f"wrote {output}")


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
