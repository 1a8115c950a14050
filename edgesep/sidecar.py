"""The sidecar: the ``<model>.json`` edgesep writes beside every model it makes (export, convert, quantize).

One typed record instead of dicts built in five places: :class:`Sidecar` holds what a later step or a user needs
to run the model right (the tensors with their layouts and int8 parameters, where it came from, how it was
verified, the recipe and preprocessing of a quantized model).  ``to_dict()`` gives the JSON documented in
docs/ARCHITECTURE.md; :func:`read_sidecar` parses it back and checks its types, so a damaged or hand-edited
file gives one clear :class:`~edgesep.errors.InputError` naming the file and the key.  Sections that belong to
one step (``verification``, ``runtime``, ``recipe``, ``preprocessing``, ``calibration``, ``quantization``) stay
JSON objects: their owners (``QuantRecipe.from_dict``, ``PreprocessingSpec.from_dict``) type them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesep.errors import InputError
from edgesep.fileio import sidecar_path

FORMATS = ("onnx", "tflite")
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class TensorQuantization:
    scale: float
    zero_point: int

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output: ``layout`` is NCHW/NHWC for 4-D image tensors, else None."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None
    layout: str | None = None
    quantization: TensorQuantization | None = None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if self.name is not None:
            entry["name"] = self.name
        entry["shape"] = list(self.shape)
        entry["dtype"] = self.dtype
        if self.quantization is not None:
            entry["quantization"] = self.quantization.to_dict()
        if self.layout is not None or self.name is not None:
            entry["layout"] = self.layout
        return entry


@dataclass(frozen=True)
class Sidecar:
    format: str  # "onnx" | "tflite"
    source: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    verification: dict[str, Any]
    edgesep_version: str = ""
    onnx_input_layout: str | None = None  # the layout of the ONNX graph's inputs ("NCHW"); None for Keras
    source_format: str | None = None  # "keras" for Keras input; None for ONNX/PyTorch
    opset: int | None = None  # ONNX exports
    runtime: dict[str, Any] | None = None  # XNNPACK delegation of a .tflite (convert/tflite_inspect.py)
    recipe: dict[str, Any] | None = None  # QuantRecipe.to_dict() of a quantized model
    preprocessing: dict[str, Any] | None = None  # PreprocessingSpec.to_dict()
    calibration: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of newer versions, kept on a round trip

    def __post_init__(self) -> None:
        if not self.edgesep_version:
            from edgesep import __version__

            object.__setattr__(self, "edgesep_version", __version__)

    @property
    def quantized(self) -> bool:
        return self.recipe is not None

    @property
    def input_layout(self) -> str | None:
        """The layout of the first 4-D input (None when there is none)."""
        return next((t.layout for t in self.inputs if len(t.shape) == 4), None)

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "edgesep_version": self.edgesep_version,
            "format": self.format,
            "source": self.source,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }
        if self.format == "tflite":
            payload["onnx_input_layout"] = self.onnx_input_layout
        if self.source_format is not None:
            payload["source_format"] = self.source_format
        if self.opset is not None:
            payload["opset"] = self.opset
        payload["verification"] = self.verification
        if self.runtime is not None:
            payload["runtime"] = self.runtime
        payload.update(recipe=self.recipe, preprocessing=self.preprocessing, calibration=self.calibration)
        if self.quantization is not None:
            payload["quantization"] = self.quantization
        return {**self.extra, **payload}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "sidecar") -> Sidecar:
        """Parse and type-check a sidecar's JSON; a wrong type raises InputError naming ``where`` and the key."""

        def bad(key: str, expected: str) -> InputError:
            return InputError(f"{where}: {key!r} must be {expected}")

        if not isinstance(data, dict):
            raise InputError(f"{where}: not a JSON object")
        fmt = data.get("format")
        if fmt not in FORMATS:
            raise bad("format", " or ".join(repr(f) for f in FORMATS))
        source = data.get("source", "")
        if not isinstance(source, str):
            raise bad("source", "a string")
        sections = {}
        for key in ("verification", "runtime", "recipe", "preprocessing", "calibration", "quantization"):
            value = data.get(key)
            if value is not None and not isinstance(value, dict):
                raise bad(key, "an object or null")
            sections[key] = value
        opset = data.get("opset")
        if opset is not None and (not isinstance(opset, int) or isinstance(opset, bool)):
            raise bad("opset", "an integer")
        known = {"edgesep_version", "format", "source", "inputs", "outputs", "onnx_input_layout", "source_format", "opset"}
        return cls(
            format=fmt,
            source=source,
            inputs=_tensors(data.get("inputs", []), "inputs", where),
            outputs=_tensors(data.get("outputs", []), "outputs", where),
            verification=sections["verification"] or {},
            edgesep_version=str(data.get("edgesep_version") or "unknown"),
            onnx_input_layout=_optional_str(data, "onnx_input_layout", where),
            source_format=_optional_str(data, "source_format", where),
            opset=opset,
            runtime=sections["runtime"],
            recipe=sections["recipe"],
            preprocessing=sections["preprocessing"],
            calibration=sections["calibration"],
            quantization=sections["quantization"],
            extra={k: v for k, v in data.items() if k not in known and k not in sections},
        )


def _optional_str(data: dict, key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: {key!r} must be a string or null")
    return value


def _tensors(entries: Any, key: str, where: str) -> tuple[TensorInfo, ...]:
    if not isinstance(entries, list):
        raise InputError(f"{where}: {key!r} must be a list")
    tensors = []
    for position, entry in enumerate(entries):
        label = f"{key}[{position}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: {label} must be an object")
        shape = entry.get("shape", [])
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise InputError(f"{where}: {label}.shape must be a list of integers")
        layout = entry.get("layout")
        if layout is not None and str(layout).upper() not in LAYOUTS:
            raise InputError(f"{where}: {label}.layout must be NCHW, NHWC or null, got {layout!r}")
        quant = entry.get("quantization")
        quantization = None
        if quant is not None:
            try:
                quantization = TensorQuantization(float(quant["scale"]), int(quant["zero_point"]))
            except (TypeError, KeyError, ValueError):
                raise InputError(f"{where}: {label}.quantization must have a number scale and zero_point") from None
        name = entry.get("name")
        tensors.append(
            TensorInfo(
                shape=tuple(shape),
                dtype=str(entry.get("dtype", "float32")),
                name=None if name is None else str(name),
                layout=None if layout is None else str(layout).upper(),
                quantization=quantization,
            )
        )
    return tuple(tensors)


def read_sidecar(model_path: str | os.PathLike) -> Sidecar | None:
    """The sidecar edgesep wrote beside ``model_path``, or None (a model edgesep did not make)."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read sidecar {path}: {error}") from None
    return Sidecar.from_dict(data, where=f"sidecar {path}")
