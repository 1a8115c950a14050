"""Run onnx2tf (from its own venv, bench/.venv-onnx2tf) as a subprocess on one ONNX file.

onnx2tf is never imported here: it needs an older TensorFlow/numpy/onnx stack than
edgesep, so ``bash bench/setup_onnx2tf.sh`` installs it into a separate venv and the
benchmarks call its executable with an argument list (no shell).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
VENV = Path(os.environ.get("ONNX2TF_VENV", BENCH_DIR / ".venv-onnx2tf"))
EXECUTABLE = VENV / "bin" / "onnx2tf"
# onnx2tf loads this file from its working directory for 3-channel models even when it
# is not quantizing (offline it cannot fetch it); any float32 array of the shape will do.
SAMPLE_NAME = "calibration_image_sample_data_20x128x128x3_float32.npy"


@dataclass(frozen=True)
class Onnx2tfResult:
    ok: bool
    seconds: float
    float_path: Path | None
    int8_path: Path | None  # float I/O, int8 inside (the `_integer_quant` file)
    error: str | None
    version: str | None


def available() -> bool:
    return EXECUTABLE.is_file()


def version() -> str | None:
    if not available():
        return None
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import onnx2tf; print(onnx2tf.__version__)"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.stdout.strip() or None


def convert(
    onnx_path: Path,
    work_dir: Path,
    *,
    input_name: str,
    calibration_nhwc: np.ndarray | None = None,
    timeout_s: float = 1800.0,
) -> Onnx2tfResult:
    """onnx2tf on ``onnx_path`` into ``work_dir``; with calibration data also its int8 model.

    ``calibration_nhwc`` is already normalised, so it is passed with mean 0 / std 1.
    """
    if not available():
        return Onnx2tfResult(False, 0.0, None, None, "onnx2tf venv missing: run bash bench/setup_onnx2tf.sh", None)
    work_dir.mkdir(parents=True, exist_ok=True)
    out_dir = work_dir / "out"
    sample = work_dir / SAMPLE_NAME
    if not sample.is_file():
        np.save(sample, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    command = [str(EXECUTABLE), "-i", str(onnx_path.resolve()), "-o", str(out_dir), "-n"]
    if calibration_nhwc is not None:
        calib_path = work_dir / "calibration.npy"
        np.save(calib_path, calibration_nhwc.astype(np.float32))
        channels = calibration_nhwc.shape[-1]
        zeros = "[[[[" + ",".join("0.0" for _ in range(channels)) + "]]]]"
        ones = "[[[[" + ",".join("1.0" for _ in range(channels)) + "]]]]"
        command += ["-oiqt", "-qt", "per-channel", "-cind", input_name, str(calib_path), zeros, ones]
    # onnx2tf runs the `onnxsim` executable through PATH: without the venv's bin first it silently skips
    # simplification (and PP-OCRv5 det then fails in oneDNN)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="2",
               PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")  # fmt: skip
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=work_dir, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return Onnx2tfResult(False, time.perf_counter() - started, None, None, f"timeout after {timeout_s:.0f} s", None)
    seconds = time.perf_counter() - started
    (work_dir / "onnx2tf.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    stem = onnx_path.stem
    float_path = out_dir / f"{stem}_float32.tflite"
    int8_path = out_dir / f"{stem}_integer_quant.tflite"
    if done.returncode != 0 or not float_path.is_file():
        return Onnx2tfResult(False, seconds, None, None, _last_error(done.stdout + done.stderr), None)
    int8 = int8_path if int8_path.is_file() else None
    error = None if calibration_nhwc is None or int8 else "no integer_quant output: " + _last_error(done.stdout + done.stderr)
    return Onnx2tfResult(True, seconds, float_path, int8, error, None)


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:200]
    return lines[-1][:200] if lines else "no output"
