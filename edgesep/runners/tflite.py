"""TfliteRunner: a .tflite file in the TFLite interpreter (ai-edge-litert), XNNPACK and threads configurable.

Float inputs of integer-input models are quantized with the model's
(scale, zero point) and integer outputs dequantized, as the on-device agent does;
``raw=True`` keeps the integer tensors. :func:`run_tflite` runs a list of samples through one
``TfliteRunner`` (convert's verification, quantize's agreement and the tests all run models this way).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.devices.agent import dequantize, make_interpreter, quantize
from edgesep.fileio import check_input
from edgesep.runners.base import Runner, check_shape


class TfliteRunner(Runner):
    """``TfliteRunner(path, threads=None, use_xnnpack=True, raw=False)``."""

    name = "tflite"

    def __init__(self, model_path: str | Path, *, threads: int | None = None, use_xnnpack: bool = True, raw: bool = False):
        super().__init__()
        self.model_path = check_input(model_path, what="TFLite model")
        self.threads = threads
        self.use_xnnpack = use_xnnpack
        self.raw = raw
        self.runtime: dict[str, str] = {}
        self._interpreter: Any = None  # ai_edge_litert / tflite_runtime / tf.lite Interpreter, chosen at activation
        self._inputs: dict[str, dict] = {}
        self._outputs: list[dict] = []

    def _activate(self) -> None:
        self._interpreter, self.runtime = make_interpreter(str(self.model_path), threads=self.threads, use_xnnpack=self.use_xnnpack)
        self._interpreter.allocate_tensors()
        self._refresh_details()

    def _refresh_details(self) -> None:
        details = self._interpreter.get_input_details()
        self._inputs = {d["name"]: d for d in details}
        self.input_names = [d["name"] for d in details]
        self._outputs = self._interpreter.get_output_details()
        self.output_names = [d["name"] for d in self._outputs]

    def input_details(self) -> list[dict]:
        return [self._inputs[name] for name in self.input_names]

    def _deactivate(self) -> None:
        self._interpreter = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._resize_if_needed(feed)
        for name, value in feed.items():
            detail = self._inputs[name]
            check_shape(name, value, [int(d) for d in detail["shape"]], runner=self.name)
            dtype = np.dtype(detail["dtype"])
            if np.issubdtype(dtype, np.integer) and not np.issubdtype(value.dtype, np.integer):
                value = quantize(value, dtype, *detail["quantization"])
            self._interpreter.set_tensor(detail["index"], np.ascontiguousarray(value, dtype=dtype))
        self._interpreter.invoke()
        outputs = {}
        for detail in self._outputs:
            value = np.array(self._interpreter.get_tensor(detail["index"]))
            if not self.raw and np.issubdtype(value.dtype, np.integer):
                value = dequantize(value, *detail["quantization"])
            outputs[detail["name"]] = value
        return outputs

    def _resize_if_needed(self, feed: dict[str, np.ndarray]) -> None:
        """Resize a dynamic batch dimension (shape_signature -1) to the feed's batch."""
        resized = False
        for name, value in feed.items():
            detail = self._inputs[name]
            signature = detail.get("shape_signature")
            if signature is None or not len(signature) or int(signature[0]) != -1 or value.ndim == 0:
                continue
            if int(detail["shape"][0]) != value.shape[0]:
                self._interpreter.resize_tensor_input(detail["index"], [value.shape[0], *detail["shape"][1:]])
                resized = True
        if resized:
            self._interpreter.allocate_tensors()
            self._refresh_details()


@dataclass(frozen=True)
class ModelRun:
    outputs: tuple[np.ndarray, ...]  # one float32 array per model output, the samples' outputs concatenated (axis 0)
    latency_ms: float  # mean over the samples


def run_tflite(model: bytes | str | Path, samples: Sequence[Sequence[np.ndarray]], *, threads: int | None = 1) -> ModelRun:
    """Run ``model`` (bytes or a path) on each sample: its inputs in the model's order and layout (float inputs of
    integer models quantized); outputs in the model's order, dequantized to float32."""
    with tempfile.TemporaryDirectory(prefix="edgesep-run-") as folder:
        path = Path(model) if isinstance(model, (str, Path)) else Path(folder) / "model.tflite"
        if not isinstance(model, (str, Path)):
            path.write_bytes(model)
        collected: list[list[np.ndarray]] = []
        with TfliteRunner(path, threads=threads) as runner:
            for sample in samples:
                result = runner.infer(dict(zip(runner.input_names, sample)))
                collected.append([np.asarray(result[name], np.float32) for name in runner.output_names])
            times = runner.inference_times_ms
    outputs = tuple(np.concatenate([c[i] for c in collected], axis=0) for i in range(len(collected[0])))
    return ModelRun(outputs=outputs, latency_ms=float(np.mean(times)) if times else 0.0)
