"""Check an exported ONNX file against the PyTorch module it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesep.data.synthetic import image_like_inputs
from edgesep.errors import InputError
from edgesep.numerics import Fidelity, check_stacked


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
    """Run onnxruntime and PyTorch on the same seeded image-like inputs; ToleranceError above ``tolerance``.

    ``tolerance`` bounds the maximum absolute error relative to each output's scale
    (max |onnx - torch| / max |torch|, with an absolute floor near zero), the same measure convert uses.
    """
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    references: list[list[np.ndarray]] = []
    candidates: list[list[np.ndarray]] = []
    for index in range(samples):
        batch = image_like_inputs(input_shape, seed=seed + index)
        with torch.no_grad():
            expected = module(torch.from_numpy(batch))
        expected_list = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        references.append([t.detach().numpy() for t in expected_list])
        candidates.append(session.run(None, {input_name: batch}))
    return check_stacked(references, candidates, tolerance=tolerance, what="ONNX output differs from PyTorch")
