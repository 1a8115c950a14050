"""``edgesep train``: train the SepCNN on scikit-learn's digits and save a state-dict checkpoint."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.fileio import check_output


@app.command("train")
def train_command(
    output: Path = typer.Option(..., "-o", "--output", help="The checkpoint (.pt) to write."),
    epochs: int = typer.Option(12, "--epochs", min=1, help="Training epochs."),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation and shuffling."),
    lr: float = typer.Option(0.01, "--lr", min=0.0, help="Peak learning rate (one-cycle)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Batch size."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Train the digits SepCNN (real data bundled with scikit-learn, no download) and report test accuracy."""
    from edgesep.models.default import save_checkpoint, train_default
    from edgesep.models.training import TrainConfig

    check_output(output, force=force)  # fail before training, not after
    config = TrainConfig(epochs=epochs, seed=seed, lr=lr, batch_size=batch_size)
    with _epoch_bar(epochs) as on_epoch:
        model, result = train_default(config=config, on_epoch=on_epoch)
    save_checkpoint(model, output, result=result, config=config, force=force)
    if as_json:
        typer.echo(json.dumps({"output": str(output), **result.to_dict(), "config": config.to_dict()}, indent=2))
        return
    echo(f"saved {output}; export it with: edgesep export edgesep.models.sepcnn:sepcnn --weights {output} -o model.onnx")
    typer.echo(
        f"test accuracy {result.test_accuracy:.4f} on the digits split after {result.epochs} epochs "
        f"({result.train_seconds:.1f} s, final loss {result.final_loss:.4f})"
    )


@contextlib.contextmanager
def _epoch_bar(epochs: int) -> Iterator[Callable[[int, float], None]]:
    """A tqdm bar over epochs (off with --quiet); yields the per-epoch callback for ``train_classifier``."""
    from tqdm import tqdm

    with tqdm(total=epochs, desc="train", unit="epoch", disable=not progress_enabled(), leave=False) as bar:

        def on_epoch(epoch: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)

        yield on_epoch
