"""Float sources: what the one quantize path (step.py) starts from.

A float source gives the float32 TFLite model that is both calibrated and the reference the
quantized model is measured against (run through ``runners.TfliteRunner`` by ``runners.tflite.run_tflite``),
the model's NCHW input specs (calibration data is checked against them) and its input layout.
Two implementations: :class:`OnnxFloatSource` (edgesep.convert's lowering of the same onnxslim
graph ``edgesep convert`` lowers; int8, float16, dynamic) and ``keras_input.KerasFloatSource``
(``TFLiteConverter.from_keras_model``, verified against Keras; int8).  ``open_float_source`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgesep.convert.loading import simplify
from edgesep.convert.lowering import has_integer_forms, lower
from edgesep.errors import ConfigError, InputError
from edgesep.quantize import engine
from edgesep.quantize.calibration import CalibrationData
from edgesep.quantize.keras_input import is_keras_input, keras_float_source
from edgesep.quantize.recipe import QuantRecipe
from edgesep.quantize.source import SourceModel, resolve


class FloatSource(Protocol):
    """A float32 TFLite model and what quantizing it needs to know.

    ``model``: the given path and the NCHW input specs; ``input_layout``: "NHWC" or "NCHW", the layout of
    the TFLite model's 4-D inputs (``to_tflite_input`` turns an NCHW data batch into it); ``source_format``:
    the sidecar's ("keras"; None for ONNX).  ``float_model()`` is the float32 reference of every variant;
    ``calibration_model(recipe, calib, progress=...)`` the float model whose activation ranges int8 calibrates (the int8
    graph's float form) and what preparing it did (``PreparedModel`` or None); ``converted(mode)`` the
    float16 or dynamic-range model.
    """

    @property
    def model(self) -> SourceModel: ...
    @property
    def input_layout(self) -> str: ...
    @property
    def source_format(self) -> str | None: ...
    def to_tflite_input(self, index: int, array: np.ndarray) -> np.ndarray: ...
    def float_model(self) -> bytes: ...
    def calibration_model(self, recipe: QuantRecipe, calib: CalibrationData, *, progress: bool = False) -> tuple[bytes, Any]: ...
    def converted(self, mode: str) -> bytes: ...


def open_float_source(
    path: str | Path,
    recipe: QuantRecipe,
    *,
    torch_model: Any = None,
    weights: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> FloatSource:
    """The float source of a .onnx, an edgesep .tflite (its ONNX) or a Keras model (.keras/.h5/SavedModel).

    Checks what the recipe asks of it first: Keras models take int8 only and no PyTorch-side preparation;
    equalization and bias correction need int8, ``torch_model`` and a single input.
    """
    if is_keras_input(path):
        if recipe.mode != "int8":
            raise InputError(f"Keras models are quantized with mode int8 only, not {recipe.mode!r} (convert them with edgesep convert)")
        if recipe.equalize_activations:
            raise InputError("Keras input: equalize_activations rewrites an ONNX graph; convert the model to ONNX first")
        if recipe.needs_torch_model:
            raise InputError("Keras input: equalize, analytic bias correction and QAT act on a PyTorch model and are not available")
        return keras_float_source(path)
    source = OnnxFloatSource(resolve(path, input_shape=input_shape), torch_model=torch_model, weights=weights)
    if recipe.prepares_torch_model(torch_model):
        source.check_torch_model(recipe)
        if recipe.equalize_activations:
            raise ConfigError("equalize_activations rewrites the ONNX graph; it does not combine with the PyTorch-side "
                              "preparation (equalize, QAT, bias correction on the PyTorch model)")  # fmt: skip
    return source


@dataclass(frozen=True)
class OnnxFloatSource:
    """An ONNX model lowered by edgesep.convert; lowered (and converted) on first use, after the data is checked."""

    model: SourceModel
    torch_model: Any = None  # for equalize / bias_correction / qat_epochs: an nn.Module or 'module:factory'
    weights: str | Path | None = None
    source_format: str | None = None

    @cached_property
    def graph(self) -> Any:
        """The same onnxslim graph `edgesep convert` lowers."""
        import onnx

        return simplify(onnx.load(str(self.model.onnx_path)))

    def lower(self, *, integer: bool = False) -> Any:
        shapes = {spec.name: spec.shape for spec in self.model.inputs}
        return lower(self.graph, keep_nchw=self.model.keep_nchw, input_shapes=shapes, integer=integer)

    @cached_property
    def lowered(self) -> Any:
        return self.lower()

    @property
    def input_layout(self) -> str:
        return "NCHW" if self.model.keep_nchw else "NHWC"

    def to_tflite_input(self, index: int, array: np.ndarray) -> np.ndarray:
        return self.lowered.to_tflite_input(index, array)

    def float_model(self) -> bytes:
        return self.float_bytes

    @cached_property
    def float_bytes(self) -> bytes:
        return engine.float_model(self.lowered)

    def calibration_model(self, recipe: QuantRecipe, calib: CalibrationData, *, progress: bool = False) -> tuple[bytes, Any]:
        if recipe.prepares_torch_model(self.torch_model):
            return self._prepared_float_model(recipe, calib, progress=progress)
        if recipe.equalize_activations:
            return self._equalized_float_model(calib)
        if has_integer_forms(self.graph):  # activations in the forms XNNPACK runs in int8 (convert/ops/activations.py)
            return engine.float_model(self.lower(integer=True)), None
        return self.float_model(), None

    def converted(self, mode: str) -> bytes:
        return engine.float16_model(self.lowered) if mode == "float16" else engine.dynamic_model(self.lowered)

    def check_torch_model(self, recipe: QuantRecipe) -> None:
        """Equalization, bias correction and QAT need int8, the PyTorch model and one input (checked before any work)."""
        if recipe.mode != "int8":
            raise ConfigError(f"equalize, bias_correction and qat_epochs apply to mode 'int8' only, not {recipe.mode!r}")
        if self.torch_model is None:
            raise InputError(
                "equalize, analytic bias_correction and qat_epochs act on the PyTorch model: pass model= (an nn.Module or "
                "'module:factory'; CLI: --torch-model), or turn them off for an ONNX-only input "
                "(empirical bias correction works without it)"
            )
        if len(self.model.inputs) != 1:
            name, count = self.model.given.name, len(self.model.inputs)
            raise InputError(f"equalize, bias_correction and qat_epochs support single-input models; {name} has {count}")

    def _equalized_float_model(self, calib: CalibrationData) -> tuple[bytes, Any]:
        """The int8-form float model of the graph with its activations equalized (equalize_onnx.py)."""
        from edgesep.quantize.equalize_onnx import equalize_activations

        names = [spec.name for spec in self.model.inputs]
        feeds = [{name: array[index : index + 1] for name, array in zip(names, calib.arrays)} for index in range(len(calib.arrays[0]))]
        graph, report = equalize_activations(self.graph, feeds)
        graph = simplify(graph)  # folds the now per-channel affine constants into the convolutions again
        shapes = {spec.name: spec.shape for spec in self.model.inputs}
        return engine.float_model(lower(graph, keep_nchw=self.model.keep_nchw, input_shapes=shapes, integer=True)), report

    def _prepared_float_model(self, recipe: QuantRecipe, calib: CalibrationData, *, progress: bool) -> tuple[bytes, Any]:
        """The float32 TFLite model of the equalized / bias-corrected / fine-tuned PyTorch model (exported to a temp folder)."""
        import tempfile

        import onnx

        from edgesep.quantize.prepare import export_prepared

        with tempfile.TemporaryDirectory(prefix="edgesep-prepare-") as tmp:
            onnx_path = Path(tmp) / "prepared.onnx"
            shape = self.model.inputs[0].shape
            source = self.model.onnx_path
            prepared = export_prepared(
                self.torch_model,
                source,
                onnx_path,
                recipe=recipe,
                data=calib.arrays[0],
                input_shape=shape,
                weights=self.weights,
                progress=progress,
            )
            graph = onnx.load(str(onnx_path))
            lowered = lower(graph, keep_nchw=self.model.keep_nchw, input_shapes={graph.graph.input[0].name: shape}, integer=True)
            return engine.float_model(lowered), prepared
