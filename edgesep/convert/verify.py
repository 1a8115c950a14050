"""Run a converted .tflite and the ONNX source in onnxruntime on the same seeded inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgesep.convert.lowering import LoweredModel
from edgesep.data.arrays import read_npy, read_npz
from edgesep.data.synthetic import image_like_inputs
from edgesep.errors import InputError, ShapeError
from edgesep.fileio import check_input
from edgesep.numerics import Fidelity, check_stacked
from edgesep.runners.tflite import run_tflite


def verify_tflite(
    onnx_model,
    model_bytes: bytes,
    lowered: LoweredModel,
    *,
    tolerance: float,
    samples: int = 4,
    seed: int = 0,
    data: Mapping[str, np.ndarray] | None = None,
) -> Fidelity:
    """Max-abs/cosine of the TFLite outputs against onnxruntime; ToleranceError above ``tolerance``
    (max-abs relative to each output's scale, with an absolute floor for outputs near zero).

    The inputs are ``data`` (``{input name: NCHW array}``, samples on the first axis; the user's own,
    representative data) when given, else image-like inputs (``data.synthetic``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = [_feed(lowered, index, seed=seed, data=data) for index in range(samples)]
    references = [session.run(list(lowered.output_names), feed) for feed in feeds]
    tflite_samples = [[lowered.to_tflite_input(i, feed[name]) for i, name in enumerate(lowered.input_names)] for feed in feeds]
    run = run_tflite(model_bytes, tflite_samples)
    candidate = [lowered.to_onnx_output(output) for output in run.outputs]  # ONNX order (interface.py)
    what = "TFLite output differs from onnxruntime"
    return check_stacked(references, [candidate], tolerance=tolerance, what=what, names=lowered.output_names)


def _feed(lowered: LoweredModel, index: int, *, seed: int, data: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Sample ``index``: its slice of ``data`` or image-like inputs, ``{input name: ONNX-layout array}``."""
    feed = {}
    for i, (name, shape, dtype) in enumerate(zip(lowered.input_names, lowered.onnx_input_shapes, lowered.input_dtypes)):
        if data is not None:
            feed[name] = np.asarray(data[name][index * shape[0] : (index + 1) * shape[0]], dtype=dtype)
        else:
            feed[name] = image_like_inputs(shape, seed=seed + 97 * index + i).astype(dtype)
    return feed


def load_verify_data(path: str | Path, input_names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The user's verification inputs: a .npy (single-input models) or a .npz keyed by input name; NCHW,
    samples on the first axis; shapes checked against the model's (ONNX layout) inputs."""

    source = check_input(path, what="verification data")
    if source.suffix == ".npz":
        arrays = read_npz(source, what="verification data")
    elif source.suffix == ".npy":
        if len(input_names) != 1:
            raise InputError(f"{source}: a .npy holds one input; this model has {len(input_names)}: use a .npz keyed by name")
        arrays = {input_names[0]: read_npy(source, what="verification data")}
    else:
        raise InputError(f"verification data must be a .npy or .npz file, not {source.name}")
    missing = [name for name in input_names if name not in arrays]
    if missing:
        raise InputError(f"{source} has no array for input {missing[0]!r} (found: {', '.join(arrays) or 'none'})")
    for name, shape in zip(input_names, shapes):
        array = arrays[name]
        if array.ndim != len(shape) or tuple(array.shape[1:]) != tuple(shape[1:]) or len(array) < shape[0]:
            raise ShapeError(f"{source}: input {name!r} needs samples of shape {tuple(shape[1:])}, got {array.shape}")
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise InputError(f"{source}: input {name!r} must be finite numbers")
    return {name: arrays[name] for name in input_names}
