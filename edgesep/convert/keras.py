"""Keras input: a .keras / .h5 file or a SavedModel folder -> verified float32 TFLite (+ sidecar).

Keras models are channels-last already, so no layout lowering is needed: the model goes straight
through ``tf.lite.TFLiteConverter`` (``from_keras_model``; ``from_saved_model`` for folders), and the
TFLite outputs are compared with the model's own outputs on seeded inputs before anything is written.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgesep.convert.step import ConvertResult
from edgesep.convert.tflite_inspect import op_histogram
from edgesep.data.synthetic import random_inputs
from edgesep.errors import InputError, ToleranceError
from edgesep.fileio import check_output, publish_model
from edgesep.models.keras_loading import first_line, load_keras
from edgesep.numerics import DEFAULT_TOLERANCE, check_stacked
from edgesep.runners.interpreter import open_interpreter
from edgesep.runners.tflite import run_tflite
from edgesep.sidecar import Sidecar, TensorInfo


def convert_keras(
    path: str | Path,
    output: str | Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    samples: int = 4,
    seed: int = 0,
    force: bool = False,
):
    """Convert a Keras model or SavedModel to a float32 .tflite verified against the source model.

    Raises ToleranceError (nothing written) when the TFLite outputs differ by more than ``tolerance``
    relative to the output scale, InputError when ``path`` is not a Keras model / SavedModel.
    """

    started = time.perf_counter()
    check_output(output, force=force)
    source = Path(path)
    reference, model_bytes = _load_and_convert(source)
    fidelity, inputs, outputs = _verify(reference, model_bytes, tolerance=tolerance, samples=samples, seed=seed)
    result = ConvertResult(
        path=Path(output),
        source=str(source),
        input_names=tuple(d["name"] for d in inputs),
        input_shapes=tuple(tuple(int(v) for v in d["shape"]) for d in inputs),
        input_layout="NHWC",
        output_names=tuple(d["name"] for d in outputs),
        output_shapes=tuple(tuple(int(v) for v in d["shape"]) for d in outputs),
        fidelity=fidelity,
        op_histogram=op_histogram(model_bytes),
        size_bytes=len(model_bytes),
        seconds=time.perf_counter() - started,
    )
    publish_model(result.path, lambda tmp: tmp.write_bytes(model_bytes), _sidecar(result, inputs, samples=samples),
                  force=force, inputs=[source])  # fmt: skip
    return result


def keras_float_tflite(path: str | Path, *, tolerance: float = DEFAULT_TOLERANCE) -> bytes:
    """The float32 TFLite bytes of a Keras model / SavedModel, verified like ``convert_keras`` (nothing written)."""
    reference, model_bytes = _load_and_convert(Path(path))
    _verify(reference, model_bytes, tolerance=tolerance, samples=4, seed=0)
    return model_bytes


def _load_and_convert(source: Path):
    """(reference callable: list of arrays -> list of arrays, TFLite bytes)."""
    import tensorflow as tf

    if source.is_dir():
        if not (source / "saved_model.pb").is_file():
            raise InputError(f"{source} is a folder without saved_model.pb, not a SavedModel")
        try:
            loaded = tf.saved_model.load(str(source))
            signature = loaded.signatures["serving_default"]
            converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
        except Exception as error:
            raise InputError(f"cannot load SavedModel {source}: {first_line(error)}") from error

        def reference(arrays: list[np.ndarray]) -> list[np.ndarray]:
            specs = signature.structured_input_signature[1]
            feeds = {name: tf.constant(a) for name, a in zip(sorted(specs), arrays)}
            result = signature(**feeds)
            return [result[key].numpy() for key in sorted(result)]

        keep = loaded
    else:
        model = load_keras(source)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)

        def reference(arrays: list[np.ndarray]) -> list[np.ndarray]:
            result = model(arrays if len(arrays) > 1 else arrays[0], training=False)
            result = result if isinstance(result, (list, tuple)) else [result]
            return [np.asarray(r) for r in result]

        keep = model
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its temporary export (would break --json)
            model_bytes = bytes(converter.convert())
    except Exception as error:
        raise InputError(f"the TFLite converter failed on {source}: {first_line(error)}") from error
    reference.keep = keep  # type: ignore[attr-defined]  # the loaded object must outlive the reference function
    return reference, model_bytes


def _verify(reference, model_bytes: bytes, *, tolerance: float, samples: int, seed: int):
    interpreter = open_interpreter(model_bytes)
    inputs, details = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = _ordered(details)
    arrays = [
        [random_inputs(tuple(int(v) for v in d["shape"]), seed=seed + 97 * index + i).astype(d["dtype"]) for i, d in enumerate(inputs)]
        for index in range(samples)
    ]
    expected = [reference(sample) for sample in arrays]
    run = run_tflite(model_bytes, arrays)  # outputs in the interpreter's order, put in the model's order here
    position = {d["index"]: p for p, d in enumerate(details)}
    actual = [[run.outputs[position[d["index"]]] for d in outputs]]
    if len(expected[0]) != len(actual[0]):
        raise ToleranceError(f"TFLite model has {len(actual[0])} outputs, the Keras model {len(expected[0])}")
    try:
        fidelity = check_stacked(expected, actual, tolerance=tolerance, what="TFLite output differs from Keras")
    except ValueError as error:
        raise ToleranceError(f"TFLite outputs do not match the Keras outputs: {error}") from error
    return fidelity, inputs, outputs


def _ordered(details: list[dict]) -> list[dict]:
    """Outputs in the model's order: ``StatefulPartitionedCall:N`` sorted by N when named so."""

    def key(detail: dict) -> tuple[int, str]:
        name = detail["name"]
        tail = name.rsplit(":", 1)[-1]
        return (int(tail), name) if ":" in name and tail.isdigit() else (0, name)

    return sorted(details, key=key) if len(details) > 1 else details


def _sidecar(result, inputs: list[dict], *, samples: int) -> Sidecar:
    def layout_of(shape) -> str | None:
        return "NHWC" if len(shape) == 4 else None

    return Sidecar(
        format="tflite",
        source=result.source,
        inputs=tuple(
            TensorInfo(tuple(s), np.dtype(d["dtype"]).name, name=n, layout=layout_of(s))
            for n, s, d in zip(result.input_names, result.input_shapes, inputs)
        ),
        outputs=tuple(
            TensorInfo(tuple(s), "float32", name=n, layout=layout_of(s)) for n, s in zip(result.output_names, result.output_shapes)
        ),
        source_format="keras",
        verification={"reference": "keras", "samples": samples, **result.fidelity.to_dict()},
    )
