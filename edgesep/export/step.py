"""The export step: PyTorch module -> checked, simplified, verified ONNX file."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgesep.errors import InputError, ShapeError
from edgesep.export.verify import check_onnx_file, verify_against_torch
from edgesep.fileio import check_output, publish_model
from edgesep.models.loading import load_factory, load_weights
from edgesep.numerics import DEFAULT_TOLERANCE, Fidelity
from edgesep.sidecar import Sidecar, TensorInfo

DEFAULT_OPSET = 17
"""Opset 17: LayerNormalization is native, and onnxruntime, onnxslim and edgesep.convert all support it."""


DEFAULT_FACTORY = "edgesep.models.default:load_default_model"
"""What the model reference ``default`` means: the digits SepCNN, trained into the cache if absent."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    source: str
    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    opset: int
    dynamic_batch: bool
    simplified: bool
    fidelity: Fidelity
    size_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["path"] = str(self.path)
        return payload


def export(
    model,
    output: str | Path,
    *,
    input_shape: tuple[int, ...] | None = None,
    weights: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    simplify: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    samples: int = 4,
    force: bool = False,
) -> ExportResult:
    """Export ``model`` (an nn.Module or a ``module.py:factory`` / ``pkg.mod:factory`` reference) to ONNX.

    The ONNX file is checked with ``onnx.checker``, simplified with onnxslim and
    run in onnxruntime against PyTorch on seeded random inputs before it is
    moved into place; above ``tolerance`` (max-abs relative to the output scale)
    a ToleranceError is raised and nothing is written.
    """
    import torch

    started = time.perf_counter()
    check_output(output, force=force, inputs=[weights] if weights else [])
    module, source = _resolve_module(model, weights=weights)
    shape = _resolve_input_shape(module, input_shape)
    output_shapes = _dry_run(module, shape)

    with tempfile.TemporaryDirectory(prefix="edgesep-export-") as folder:
        tmp = Path(folder) / "model.onnx"
        _torch_export(module, tmp, shape, opset=opset, dynamic_batch=dynamic_batch, outputs=len(output_shapes))
        check_onnx_file(tmp)
        simplified = simplify and _simplify_in_place(tmp)
        fidelity = verify_against_torch(module, tmp, shape, tolerance=tolerance, seed=seed, samples=samples)
        if dynamic_batch:
            batch_shape = (shape[0] + 2, *shape[1:])
            fidelity_batch = verify_against_torch(module, tmp, batch_shape, tolerance=tolerance, seed=seed, samples=1)
            fidelity = fidelity if fidelity.relative >= fidelity_batch.relative else fidelity_batch
        path = Path(output)
        result = ExportResult(
            path=path,
            source=source,
            input_shape=shape,
            output_shapes=output_shapes,
            opset=opset,
            dynamic_batch=dynamic_batch,
            simplified=simplified,
            fidelity=fidelity,
            size_bytes=tmp.stat().st_size,
            seconds=time.perf_counter() - started,
        )
        publish_model(path, lambda target: shutil.copyfile(tmp, target), _sidecar(result), force=force)
    del torch
    return result


def _resolve_module(model, *, weights: str | Path | None):
    import torch

    if isinstance(model, torch.nn.Module):
        module, source = model, type(model).__name__
    elif isinstance(model, str):
        reference = DEFAULT_FACTORY if model == "default" else model
        module, source = load_factory(reference), reference
    else:
        raise InputError(f"model must be an nn.Module or a 'module:factory' reference, got {type(model).__name__}")
    if weights is not None:
        load_weights(module, weights)
    return module.eval(), source


def _resolve_input_shape(module, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
    else:
        known = getattr(module, "input_shape", None)
        if known is None:
            raise InputError(f"{type(module).__name__} does not declare its input shape; pass --input-shape N,C,H,W")
        shape = tuple(int(d) for d in known)
    if not shape or any(d <= 0 for d in shape):
        raise ShapeError(f"input shape must be positive integers, got {shape}")
    return shape


def _expected_channels(module) -> int | None:
    import torch

    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            return layer.in_channels
    return None


def _dry_run(module, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Run the model once on zeros so that a wrong shape fails here with a clear message."""
    import torch

    try:
        with torch.no_grad():
            result = module(torch.zeros(shape))
    except (RuntimeError, ValueError, IndexError) as error:
        hint = ""
        known = getattr(module, "input_shape", None)
        channels = _expected_channels(module)
        if known is not None:
            hint = f"; the model expects {tuple(known)}"
        elif channels is not None:
            hint = f"; the model's first convolution expects {channels} input channels (N,{channels},H,W)"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ShapeError(f"input shape {shape} does not fit {type(module).__name__}{hint} ({first_line})") from error
    outputs = [result] if isinstance(result, torch.Tensor) else list(result)
    if not all(isinstance(t, torch.Tensor) for t in outputs):
        raise InputError(f"{type(module).__name__} must return a tensor or a tuple of tensors")
    return tuple(tuple(t.shape) for t in outputs)


def _torch_export(module, path: Path, shape, *, opset: int, dynamic_batch: bool, outputs: int) -> None:
    """TorchScript-based exporter (dynamo=False): mature, no onnxscript dependency, handles torchvision."""
    import torch

    output_names = ["output"] if outputs == 1 else [f"output_{i}" for i in range(outputs)]
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {"input": {0: "batch"}, **{name: {0: "batch"} for name in output_names}}
    try:
        torch.onnx.export(
            module,
            (torch.zeros(shape),),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    except Exception as error:  # the exporter raises many types for unexportable ops
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"PyTorch could not export {type(module).__name__} to ONNX opset {opset}: {message}") from error


def _simplify_in_place(path: Path) -> bool:
    """Constant-fold and simplify with onnxslim; keep the original if slimming fails."""
    import onnx

    try:
        import onnxslim
    except ImportError:
        return False
    try:
        slimmed = onnxslim.slim(str(path))
    except Exception:  # a simplifier failure must not fail the export: the unslimmed model is valid
        return False
    onnx.save(slimmed, str(path))
    return True


def _sidecar(result: ExportResult) -> Sidecar:
    return Sidecar(
        format="onnx",
        source=result.source,
        inputs=(TensorInfo(tuple(result.input_shape), "float32", name="input", layout="NCHW"),),
        outputs=tuple(TensorInfo(tuple(s), "float32") for s in result.output_shapes),
        opset=result.opset,
        verification={"reference": "pytorch", **result.fidelity.to_dict()},
    )
