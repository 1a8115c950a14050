"""Run a converted .tflite and the ONNX source in onnxruntime on the same seeded inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgesep.convert.lowering import LoweredModel
from edgesep.data.synthetic import image_like_inputs
from edgesep.numerics import Fidelity, check_stacked
from edgesep.runners.interpreter import open_interpreter


def run_tflite(model, inputs: list[np.ndarray], *, threads: int | None = None) -> list[np.ndarray]:
    """One inference of a float .tflite (bytes or a ready Interpreter): inputs in its layout,
    outputs in the interpreter's order."""
    if isinstance(model, (bytes, bytearray)):
        interpreter = open_interpreter(model, threads=threads)
    else:
        interpreter = model
    for detail, array in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], array.astype(detail["dtype"]))
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]).copy() for detail in interpreter.get_output_details()]


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
    interpreter = open_interpreter(model_bytes)
    references: list[list[np.ndarray]] = []
    candidates: list[list[np.ndarray]] = []
    for index in range(samples):
        feeds = {}
        for i, (name, shape, dtype) in enumerate(zip(lowered.input_names, lowered.onnx_input_shapes, lowered.input_dtypes)):
            if data is not None:
                batch = shape[0]
                feeds[name] = np.asarray(data[name][index * batch : (index + 1) * batch], dtype=dtype)
            else:
                feeds[name] = image_like_inputs(shape, seed=seed + 97 * index + i).astype(dtype)
        references.append(session.run(list(lowered.output_names), feeds))
        tflite_inputs = [lowered.to_tflite_input(i, feeds[name]) for i, name in enumerate(lowered.input_names)]
        outputs = run_tflite(interpreter, tflite_inputs)
        candidates.append([lowered.to_onnx_output(output) for output in outputs])  # ONNX order (interface.py)
    return check_stacked(
        references, candidates, tolerance=tolerance, what="TFLite output differs from onnxruntime",
        names=lowered.output_names,
    )


def load_verify_data(
    path: str | Path, input_names: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The user's verification inputs: a .npy (single-input models) or a .npz keyed by input name; NCHW,
    samples on the first axis; shapes checked against the model's (ONNX layout) inputs."""
    from edgesep.data.arrays import read_npy, read_npz
    from edgesep.errors import InputError, ShapeError
    from edgesep.fileio import check_input

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
