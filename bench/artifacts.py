"""The converted/quantized model files each tool makes, built once into bench/.work and reused.

Every builder returns an :class:`Artifact` (path or error, build seconds).  The build
record (seconds, error) is kept beside the file in ``<file>.build.json`` so that a
later script (latency) reuses the file and still reports the original build time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import common
import numpy as np
import onnx2tf_tool
from common import WORK_DIR, DataSet, ModelSpec


@dataclass(frozen=True)
class Artifact:
    tool: str
    kind: str  # "float" or "int8"
    path: Path | None
    seconds: float | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.path is not None and self.path.is_file()


NOT_RUN = "not run (--skip-onnx2tf)"


def _cached(tool: str, kind: str, path: Path, *, fresh: bool, build: Callable[[], Path | None], build_missing: bool = True) -> Artifact:
    record = path.with_name(path.name + ".build.json")
    if not build_missing and (fresh or not record.is_file()):
        return Artifact(tool, kind, None, None, NOT_RUN)
    if not fresh and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("error") or path.is_file():
            return Artifact(tool, kind, path if path.is_file() else None, saved.get("seconds"), saved.get("error"))
    path.parent.mkdir(parents=True, exist_ok=True)
    value, seconds, error = common.timed(build)
    if error is None and (value is None or not Path(value).is_file()):
        error = "no output file"
    produced = Path(value) if error is None else None
    record.write_text(json.dumps({"seconds": seconds, "error": error}))
    return Artifact(tool, kind, produced, seconds, error)


def input_name(onnx_file: Path) -> str:
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in initializers)


# ----------------------------------------------------------------------------- edgesep


def edgesep_float(spec: ModelSpec, *, fresh: bool = False) -> Artifact:
    onnx_file = common.onnx_path(spec)
    target = WORK_DIR / "edgesep" / f"{spec.name}.tflite"

    def build() -> Path:
        from edgesep.convert import convert

        convert(onnx_file, target, force=True)
        return target

    return _cached("edgesep", "float", target, fresh=fresh, build=build)


def edgesep_int8(spec: ModelSpec, data: DataSet, *, fresh: bool = False) -> Artifact:
    onnx_file = common.onnx_path(spec)
    target = WORK_DIR / "edgesep" / f"{spec.name}.int8-c{len(data.calib)}.tflite"

    def build() -> Path:
        from edgesep.quantize import QuantRecipe, quantize
        from edgesep.quantize.calibration import ArraySource

        calib = WORK_DIR / "calib" / f"{spec.name}-{len(data.calib)}.npy"
        calib.parent.mkdir(parents=True, exist_ok=True)
        np.save(calib, data.calib)
        recipe = QuantRecipe(mode="int8", per_channel=True, samples=len(data.calib), seed=common.SEED)
        quantize(onnx_file, target, recipe=recipe, calibration=ArraySource(calib), force=True)
        return target

    return _cached("edgesep", "int8", target, fresh=fresh, build=build)


# ----------------------------------------------------------------------------- onnx2tf


def onnx2tf_float(spec: ModelSpec, *, fresh: bool = False, build_missing: bool = True) -> Artifact:
    onnx_file = common.onnx_path(spec)
    folder = WORK_DIR / "onnx2tf" / spec.name
    target = folder / "out" / f"{spec.name}_float32.tflite"

    def build() -> Path:
        result = onnx2tf_tool.convert(onnx_file, folder, input_name=input_name(onnx_file))
        if not result.ok:
            raise RuntimeError(result.error)
        return result.float_path

    return _cached("onnx2tf", "float", target, fresh=fresh, build=build, build_missing=build_missing)


def onnx2tf_int8(spec: ModelSpec, data: DataSet, *, fresh: bool = False, build_missing: bool = True) -> Artifact:
    """onnx2tf -oiqt with the same calibration images (NHWC, already normalised)."""
    onnx_file = common.onnx_path(spec)
    folder = WORK_DIR / "onnx2tf-int8" / f"{spec.name}-c{len(data.calib)}"
    target = folder / "out" / f"{spec.name}_integer_quant.tflite"

    def build() -> Path:
        calib = np.ascontiguousarray(data.calib.transpose(0, 2, 3, 1))
        result = onnx2tf_tool.convert(onnx_file, folder, input_name=input_name(onnx_file), calibration_nhwc=calib)
        if result.int8_path is None:
            raise RuntimeError(result.error)
        return result.int8_path

    return _cached("onnx2tf", "int8", target, fresh=fresh, build=build, build_missing=build_missing)


# ----------------------------------------------------------------------------- onnxruntime


def ort_float(spec: ModelSpec) -> Artifact:
    return Artifact("onnxruntime", "float", common.onnx_path(spec), 0.0, None)


class _Reader:
    """onnxruntime CalibrationDataReader over NCHW samples (batch 1 each)."""

    def __init__(self, name: str, samples: np.ndarray):
        self._items = iter([{name: samples[i : i + 1]} for i in range(len(samples))])

    def get_next(self):
        return next(self._items, None)


def ort_int8(spec: ModelSpec, data: DataSet, *, fresh: bool = False) -> Artifact:
    """onnxruntime quantize_static: QDQ, int8 activations and weights, per-channel, MinMax.

    ``reduce_range`` (7-bit weights) as onnxruntime recommends for x86 CPUs without VNNI:
    without it the u8s8 kernels saturate (on the digits SepCNN: cosine 0.976 and 97.2%
    top-1 agreement instead of 0.9996 and 100%).
    """
    onnx_file = common.onnx_path(spec)
    target = WORK_DIR / "ort" / f"{spec.name}.qdq-c{len(data.calib)}.onnx"

    def build() -> Path:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        prepared = target.with_name(f"{spec.name}.pre.onnx")
        try:
            quant_pre_process(str(onnx_file), str(prepared), skip_symbolic_shape=True)
            source = prepared
        except Exception:  # noqa: BLE001 - pre-processing is optional
            source = onnx_file
        reader = _Reader(input_name(onnx_file), data.calib)
        quantize_static(
            str(source),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return target

    return _cached("onnxruntime", "int8", target, fresh=fresh, build=build)


def run(artifact: Artifact, batch_nchw: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """Outputs of an artifact on NCHW samples, whatever its format."""
    assert artifact.path is not None
    if artifact.path.suffix == ".onnx":
        return common.run_onnx(artifact.path, batch_nchw, threads=threads)
    return common.run_tflite(artifact.path, batch_nchw, threads=threads)


def latency(artifact: Artifact, *, threads: int, runs: int, warmup: int) -> np.ndarray:
    assert artifact.path is not None
    if artifact.path.suffix == ".onnx":
        return common.time_onnx(artifact.path, threads=threads, runs=runs, warmup=warmup)
    return common.time_tflite(artifact.path, threads=threads, runs=runs, warmup=warmup)


def now() -> float:
    return time.perf_counter()
