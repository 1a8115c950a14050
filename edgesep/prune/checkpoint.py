"""Pruned checkpoints that load with ``torch.load(weights_only=True)``.

A pruned model cannot be rebuilt by its factory alone (its channel counts changed), and pickling the
module would need ``weights_only=False``.  The checkpoint is therefore a plain dict::

    {"format": "edgesep.pruned/1", "source": "<factory reference>", "input_shape": [1, C, H, W],
     "architecture": {"<module name>": {"type": "Conv2d", "in": 16, "out": 8, "groups": 1}, ...},
     "prune": {... PruneResult.to_dict() without the model ...}, "state_dict": {...}}

``load_pruned`` calls the factory, resizes every Conv2d / BatchNorm2d / Linear to the recorded
sizes and loads the state dict strictly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesep.errors import InputError
from edgesep.fileio import atomic_path, check_input
from edgesep.models.loading import load_factory, load_weights

FORMAT = "edgesep.pruned/1"


def architecture(model) -> dict[str, dict[str, Any]]:
    """Channel counts of every Conv2d, BatchNorm2d and Linear, by qualified name."""
    from torch import nn

    layout: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            layout[name] = {"type": "Conv2d", "in": module.in_channels, "out": module.out_channels, "groups": module.groups}
        elif isinstance(module, nn.BatchNorm2d):
            layout[name] = {"type": "BatchNorm2d", "features": module.num_features}
        elif isinstance(module, nn.Linear):
            layout[name] = {"type": "Linear", "in": module.in_features, "out": module.out_features}
    return layout


def save_pruned(
    model, path: str | Path, *, source: str, input_shape: tuple[int, ...], summary: dict | None = None, force: bool = False
) -> Path:
    """Write ``model`` (pruned from the module built by factory ``source``) atomically."""
    import torch

    payload = {
        "format": FORMAT,
        "source": source,
        "input_shape": list(input_shape),
        "architecture": architecture(model),
        "prune": summary or {},
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    with atomic_path(path, force=force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict | None:
    """The checkpoint dict when ``path`` is an edgesep pruned checkpoint, else None."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file, or it needs pickled code
        return None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return payload
    return None


def is_pruned_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and read_checkpoint(path) is not None


def load_pruned(path: str | Path):
    """Rebuild the pruned nn.Module saved at ``path`` (eval mode, ``input_shape`` set)."""

    payload = read_checkpoint(path)
    if payload is None:
        raise InputError(f"{path} is not an edgesep pruned checkpoint ({FORMAT})")
    model = load_factory(payload["source"])
    resize(model, payload["architecture"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise InputError(f"pruned checkpoint {path} does not fit {payload['source']}: {str(error).splitlines()[0]}") from error
    model.input_shape = tuple(payload["input_shape"])
    return model.eval()


def resize(model, layout: dict[str, dict[str, Any]]) -> None:
    """Give modules the channel counts in ``layout`` (values are overwritten by the state dict)."""
    import torch
    from torch import nn

    modules = dict(model.named_modules())
    for name, spec in layout.items():
        module = modules.get(name)
        if module is None or type(module).__name__ != spec["type"]:
            raise InputError(f"pruned checkpoint names {spec['type']} {name!r}, which the model does not have")
        if isinstance(module, nn.Conv2d):
            module.in_channels, module.out_channels, module.groups = spec["in"], spec["out"], spec["groups"]
            shape = (spec["out"], spec["in"] // spec["groups"], *module.kernel_size)
            module.weight = nn.Parameter(torch.empty(shape))
            if module.bias is not None:
                module.bias = nn.Parameter(torch.empty(spec["out"]))
        elif isinstance(module, nn.BatchNorm2d):
            n = module.num_features = spec["features"]
            if module.affine:
                module.weight, module.bias = nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n))
            if module.running_mean is not None:
                module.running_mean, module.running_var = torch.zeros(n), torch.ones(n)
        elif isinstance(module, nn.Linear):
            module.in_features, module.out_features = spec["in"], spec["out"]
            module.weight = nn.Parameter(torch.empty(spec["out"], spec["in"]))
            if module.bias is not None:
                module.bias = nn.Parameter(torch.empty(spec["out"]))


def resolve_model(reference: str, *, weights: str | Path | None = None):
    """``(module, source)`` from a pruned checkpoint path or a factory reference (+ optional weights)."""

    path = Path(reference)
    if path.suffix in (".pt", ".pth"):
        check_input(path, what="pruned checkpoint")  # missing or a folder: one line saying which
        payload = read_checkpoint(path)
        if payload is None:
            raise InputError(f"{path} is not an edgesep pruned checkpoint; give a factory and --weights {path}")
        return load_pruned(path), payload["source"]
    model = load_factory(reference)
    if weights is not None:
        load_weights(model, weights)
    return model.eval(), reference
