"""Resolve user model references (``file.py:factory`` / ``pkg.mod:factory``) and load checkpoints safely."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from edgesep.errors import InputError
from edgesep.fileio import check_input

REFERENCE_HELP = "expected 'path/to/file.py:factory' or 'package.module:factory'"


def split_reference(reference: str) -> tuple[str, str]:
    """``"a/b.py:make"`` -> (``"a/b.py"``, ``"make"``); InputError when there is no factory part."""
    location, sep, attribute = reference.rpartition(":")
    if not sep or not location or not attribute.isidentifier():
        raise InputError(f"model reference {reference!r} is not understood; {REFERENCE_HELP}")
    return location, attribute


def _import_file(path: Path):
    check_input(path, what="model file")
    name = f"edgesep_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # user code may raise anything while importing
        del sys.modules[name]
        raise InputError(f"importing {path} failed: {type(error).__name__}: {error}") from error
    return module


def _import_module(dotted: str):
    try:
        return importlib.import_module(dotted)
    except ImportError as error:
        raise InputError(f"cannot import module {dotted!r}: {error}; {REFERENCE_HELP}") from error


def load_factory(reference: str, **kwargs):
    """Call the factory named by ``reference`` and return the nn.Module it builds (in eval mode)."""
    import torch

    location, attribute = split_reference(reference)
    looks_like_file = location.endswith(".py") or "/" in location or "\\" in location
    module = _import_file(Path(location)) if looks_like_file else _import_module(location)
    factory = getattr(module, attribute, None)
    if factory is None:
        raise InputError(f"{location} has no attribute {attribute!r}")
    if not callable(factory):
        raise InputError(f"{reference} is not callable")
    try:
        model = factory(**kwargs)
    except Exception as error:  # user code
        raise InputError(f"factory {reference} failed: {type(error).__name__}: {error}") from error
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"factory {reference} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def load_weights(module, path: str | Path) -> None:
    """Load a state dict (or a checkpoint dict holding ``state_dict``/``model``) with ``weights_only=True``."""
    import pickle

    import torch

    path = Path(path)
    check_input(path, what="weights file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise InputError(
            f"refusing to load {path}: it needs arbitrary pickled code, which weights_only=True forbids "
            "(save a state_dict with torch.save(model.state_dict(), path))"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            UnicodeDecodeError) as error:  # what torch.load raises on files that are not checkpoints  # fmt: skip
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not a PyTorch checkpoint ({type(error).__name__}: {first[:200]})") from None
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict):
        raise InputError(f"{path} does not hold a state dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise InputError(f"weights in {path} do not fit {type(module).__name__}: {_mismatch(module, state, error)}") from None


def _mismatch(module, state: dict, error: RuntimeError) -> str:
    """A short account of a state-dict mismatch (torch's message lists every key on one line)."""
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(map(str, unexpected[:3]))}{', ...' if len(unexpected) > 3 else ''})")
        return "; ".join(parts)
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return " ".join(lines[1:3] or lines[:1])[:300]  # shape mismatches: the first ones
