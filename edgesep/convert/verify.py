"""Run a converted .tflite and the ONNX source in onnxruntime on the same seeded inputs."""

from __future__ import annotations

import numpy as np

from edgesep.convert.lowering import LoweredModel
from edgesep.data.synthetic import random_inputs
from edgesep.errors import ToleranceError
from edgesep.numerics import Fidelity, check_stacked


def run_tflite(model, inputs: list[np.ndarray], *, threads: int | None = None) -> list[np.ndarray]:
    """One inference of a float .tflite (bytes or a ready Interpreter): inputs in its layout,
    outputs in the interpreter's order."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(model), num_threads=threads)
        interpreter.allocate_tensors()
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
) -> Fidelity:
    """Max-abs/cosine of the TFLite outputs against onnxruntime; ToleranceError above ``tolerance``
    (max-abs relative to the output scale)."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    order = _output_order(model_bytes, lowered)
    references: list[list[np.ndarray]] = []
    candidates: list[list[np.ndarray]] = []
    for index in range(samples):
        feeds = {}
        for i, (name, shape, dtype) in enumerate(zip(lowered.input_names, lowered.onnx_input_shapes, lowered.input_dtypes)):
            feeds[name] = random_inputs(shape, seed=seed + 97 * index + i).astype(dtype)
        references.append(session.run(list(lowered.output_names), feeds))
        tflite_inputs = [lowered.to_tflite_input(i, feeds[name]) for i, name in enumerate(lowered.input_names)]
        outputs = run_tflite(interpreter, tflite_inputs)
        candidates.append([lowered.to_onnx_output(outputs[j]) for j in order])
    return check_stacked(references, candidates, tolerance=tolerance, what="TFLite output differs from onnxruntime")


def _output_order(model_bytes: bytes, lowered: LoweredModel) -> list[int]:
    """For each ONNX output, the index of the interpreter output that holds it."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=model_bytes).get_output_details()
    if len(details) != len(lowered.output_names):
        raise ToleranceError(f"TFLite model has {len(details)} outputs, ONNX has {len(lowered.output_names)}")
    return output_order([d["name"] for d in details])


def output_order(names: list[str]) -> list[int]:
    """Interpreter output names like ``PartitionedCall:1`` -> the position holding function output 0, 1, ...

    The converter may list the outputs of a multi-output function out of order;
    the ``:N`` suffix is the function's output index.  Unknown names keep their order.
    """
    suffixes = []
    for name in names:
        head, _, tail = name.rpartition(":")
        if not head or not tail.isdigit():
            return list(range(len(names)))
        suffixes.append(int(tail))
    if sorted(suffixes) != list(range(len(names))):
        return list(range(len(names)))
    return [suffixes.index(i) for i in range(len(names))]
