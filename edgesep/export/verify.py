"""Check an exported ONNX file against the PyTorch module it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesep.data.synthetic import image_like_inputs
from edgesep.errors import InputError
from edgesep.numerics import Fidelity, check_stacked
from edgesep.runners.onnxrt import OnnxRunner
from edgesep.runners.pytorch import TorchRunner


def check_onnx_file(path: Path) -> None:
    """``onnx.checker`` on the file; a failure is an InputError naming the file."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as error:  # onnx raises several unrelated types
        raise InputError(f"exported ONNX model {path} fails onnx.checker: {str(error).splitlines()[0]}") from error


def verify_against_torch(
    module,
    onnx_path: Path,
    input_shape: tuple[int, ...],
    *,
    tolerance: float,
    seed: int = 0,
    samples: int = 4,
) -> Fidelity:
    """Run PyTorch and onnxruntime (runners.TorchRunner, runners.OnnxRunner) on the same seeded image-like inputs;
    ToleranceError above ``tolerance``.

    ``tolerance`` bounds the maximum absolute error relative to each output's scale
    (max |onnx - torch| / max |torch|, with an absolute floor near zero), the same measure convert uses.
    """

    references: list[list[np.ndarray]] = []
    candidates: list[list[np.ndarray]] = []
    with TorchRunner(module) as reference, OnnxRunner(onnx_path) as candidate:
        for index in range(samples):
            batch = image_like_inputs(input_shape, seed=seed + index)
            references.append(list(reference.infer(batch).values()))
            candidates.append(list(candidate.infer(batch).values()))
    return check_stacked(references, candidates, tolerance=tolerance, what="ONNX output differs from PyTorch")
