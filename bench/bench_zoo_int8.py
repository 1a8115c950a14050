"""int8 against float on the real-model zoo (issue #13's "each >= 0.95 of its task metric, int8 faster than float"):
per model and recipe, the task metric against the float TFLite model on held-out real crops, cosine, p50 float and
int8 at 1 thread (interleaved), the int8/float speed-up and the XNNPACK partitions.

    python bench/bench_zoo_int8.py [--recipes default percentile percentile+bias] [MODEL ...]

Task metric: top-1 agreement of the class output for the classifiers (PP-OCRv5 cls, text orientation, the
torchvision ImageNet models with BatchNorm re-estimated on photos) and for MTCNN ONet's face/no-face output; the
PP-OCRv5 detector has its own bench (bench_det_int8.py). Calibration: 96 crops (seed 1) of scikit-image's photos;
evaluation: 64 other crops (seed 2). Prints a Markdown table (docs/QUANTIZATION.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch._dynamo  # noqa: F401  (before TensorFlow: triton segfaults when imported after it)

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "zoo_int8"
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
from bench_zoo import p50s  # noqa: E402
from common import recipe_options  # noqa: E402

from edgesep.convert import convert  # noqa: E402
from edgesep.convert.tflite_inspect import delegation  # noqa: E402
from edgesep.quantize import quantize  # noqa: E402
from edgesep.quantize.recipe import QuantRecipe  # noqa: E402
from edgesep.runners.tflite import run_tflite  # noqa: E402
from edgesep.testing.zoo import zoo_model  # noqa: E402

MODELS = ("ppocr_cls", "text_orientation", "mtcnn_onet", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
          "shufflenet_v2")  # fmt: skip


def class_output(outputs: tuple[np.ndarray, ...]) -> int:
    """The output that holds class scores: the first with 2..1000 values per sample (ONet: face/no-face)."""
    return next(i for i, o in enumerate(outputs) if 2 <= o.reshape(len(o), -1).shape[1] <= 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--recipes", nargs="*", default=["default", "percentile"])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print("| model | recipe | top-1 agreement | cosine | p50 float ms | p50 int8 ms | int8 speed-up | partitions float / int8 |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name in args.models:
        zoo = zoo_model(name)
        onnx_path = zoo.onnx_path(WORK)
        np.save(WORK / f"{name}.calib.npy", zoo.inputs(96, seed=1))
        evaluation = zoo.inputs(64, seed=2)
        float_path = convert(onnx_path, WORK / f"{name}.tflite", input_shape=zoo.shape, force=True, tolerance=1.0).path
        samples = [[image[None].transpose(0, 2, 3, 1).copy()] for image in evaluation]
        reference = run_tflite(float_path.read_bytes(), samples)
        scores = class_output(reference.outputs)
        for recipe_name in args.recipes:
            recipe = QuantRecipe(mode="int8", samples=96, **recipe_options(recipe_name))
            path = quantize(onnx_path, WORK / f"{name}_{recipe_name}.tflite", recipe=recipe, calibration=str(WORK / f"{name}.calib.npy"),
                            input_shape=zoo.shape, holdout=0, force=True).path  # fmt: skip
            run = run_tflite(path.read_bytes(), samples)
            ref, got = reference.outputs[scores], run.outputs[scores]
            top1 = float(np.mean(ref.reshape(len(ref), -1).argmax(1) == got.reshape(len(got), -1).argmax(1)))
            a, b = ref.reshape(len(ref), -1).astype(np.float64), got.reshape(len(got), -1).astype(np.float64)
            cosine = float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))
            float_ms, int8_ms = p50s([float_path, path], runs=args.runs)
            print(
                f"| {name} | {recipe_name} | {top1:.3f} | {cosine:.4f} | {float_ms:.2f} | {int8_ms:.2f} | {float_ms / int8_ms:.2f}x "
                f"| {delegation(float_path).partitions} / {delegation(path).partitions} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
