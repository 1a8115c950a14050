"""PP-OCRv5 mobile det int8 on the reference protocol of ../shared/eval (issue #13): IoU@0.3 of the thresholded
maps against the float ONNX model, cosine, p50 (1 thread) and XNNPACK partitions, per edgesep recipe.

    python bench/bench_det_int8.py [--recipes default percentile mse percentile+bias] [--fallback 3]

Data: 200 calibration crops (seed 1) of scikit-image's photographs and 50 evaluation images (the `text` and
`page` frames, seed 5, + 48 crops, seed 9), 320x320, ImageNet-normalized: `edgesep.testing.zoo.photo_crops`
draws the same crops as ../shared/eval/quant_data.py. Prints a Markdown table (docs/QUANTIZATION.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch._dynamo  # noqa: F401  (before TensorFlow: triton segfaults when imported after it)

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "det_int8"
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
from common import recipe_options  # noqa: E402

from edgesep.convert import convert  # noqa: E402
from edgesep.convert.tflite_inspect import delegation  # noqa: E402
from edgesep.quantize import quantize  # noqa: E402
from edgesep.quantize.recipe import QuantRecipe  # noqa: E402
from edgesep.testing.zoo import IMAGENET_MEAN, IMAGENET_STD, photo_crops, text_scenes, zoo_model  # noqa: E402

SHAPE = (1, 3, 320, 320)


def normalized(pixels: np.ndarray) -> np.ndarray:
    mean = np.asarray(IMAGENET_MEAN, np.float32)[None, :, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[None, :, None, None]
    return ((pixels - mean) / std).astype(np.float32)


def _scores(references: list[np.ndarray], outputs: list[np.ndarray]) -> tuple[float, float, float, float]:
    """(IoU@0.3 mean over the images where float detects text: the protocol's figure; the same IoU pooled (sum of
    intersections / sum of unions: big text regions weigh more than a few stray pixels); text-box F1 as DB
    post-processing finds boxes (score >= 0.6, IoU >= 0.5 matches) over the images where either side has a box;
    cosine mean over the images where float detects text)."""
    from edgesep.quantize.map_metrics import box_agreement, map_iou

    ref, got = np.stack(references), np.stack(outputs)
    flat_ref, flat_got = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
    detected = (flat_ref > 0.3).any(axis=1)
    cosines = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)) for a, b in zip(flat_ref[detected], flat_got[detected])]
    return (map_iou(ref, got, threshold=0.3), map_iou(ref, got, threshold=0.3, pooled=True),
            box_agreement(ref, got), float(np.mean(cosines)))  # fmt: skip


def evaluate(model: Path, onnx_path: Path, images: np.ndarray) -> tuple[float, float, float, float, float]:
    """(_scores of the .tflite against the float ONNX model..., p50 ms at 1 thread)."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    interpreter = Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    references, outputs = [], []
    for image in images:
        references.append(session.run(None, {"x": image[None]})[0][0, 0])
        interpreter.set_tensor(source["index"], image[None].transpose(0, 2, 3, 1).copy())
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"]).astype(np.float32).reshape(references[-1].shape))
    times = []
    for _ in range(10):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    return (*_scores(references, outputs), float(np.median(times)))


def noise_floor(onnx_path: Path, images: np.ndarray, int8_model: Path) -> tuple[float, float, float, float]:
    """The float ONNX model against itself with its input rounded to the int8 model's input grid (what the first
    QUANTIZE of any int8 model does): _scores."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    scale, zero_point = next(d["quantization"] for d in Interpreter(model_path=str(int8_model)).get_tensor_details()
                             if d["quantization"][0] and d["name"] == "tfl.quantize")  # fmt: skip
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    references, outputs = [], []
    for image in images:
        references.append(session.run(None, {"x": image[None]})[0][0, 0])
        rounded = ((np.clip(np.round(image / scale) + zero_point, -128, 127) - zero_point) * scale).astype(np.float32)
        outputs.append(session.run(None, {"x": rounded[None]})[0][0, 0])
    return _scores(references, outputs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", nargs="*", default=["default", "percentile", "mse"])
    parser.add_argument("--fallback", type=int, default=0, help="also percentile + --auto-fallback N (iou@0.3)")
    parser.add_argument("--scene-calibration", action="store_true", help="also the recipes calibrated on 200 text scenes")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    onnx_path = zoo_model("ppocr_det").onnx_path(WORK)
    calibration = WORK / "calib.npy"
    np.save(calibration, normalized(photo_crops(320, 320, 200, seed=1)))
    images = normalized(np.concatenate([photo_crops(320, 320, 2, seed=5, names=("text", "page")),
                                        photo_crops(320, 320, 48, seed=9)]))  # fmt: skip
    scenes = normalized(text_scenes(320, 320, 40, seed=21))  # printed words on photos: text to find
    rows = [("float32", convert(onnx_path, WORK / "float.tflite", input_shape=SHAPE, force=True).path)]
    calibrations = [("", calibration)]
    if args.scene_calibration:
        np.save(WORK / "calib_scenes.npy", normalized(text_scenes(320, 320, 200, seed=11)))
        calibrations.append((", calibrated on text scenes", WORK / "calib_scenes.npy"))
    for label, data in calibrations:
        for name in args.recipes:
            recipe = QuantRecipe(mode="int8", samples=200, **recipe_options(name))
            target = WORK / f"{name}{'_scenes' if label else ''}.tflite"
            rows.append((f"int8 {name}{label}", quantize(onnx_path, target, recipe=recipe, calibration=str(data),
                                                         input_shape=SHAPE, holdout=0, force=True).path))  # fmt: skip
    if args.fallback:
        recipe = QuantRecipe(mode="int8", samples=150, activation_range="percentile")
        rows.append((f"int8 percentile + fallback {args.fallback} (iou@0.3, 50 held-out calibration crops)",
                     quantize(onnx_path, WORK / "fallback.tflite", recipe=recipe, calibration=str(calibration), input_shape=SHAPE,
                              holdout=50, auto_fallback=args.fallback, metric="iou@0.3", force=True).path))  # fmt: skip
    print(
        "| model / recipe | protocol: IoU@0.3 mean | pooled IoU | box F1 | text scenes: pooled IoU | box F1 | p50 ms | XNNPACK partitions |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, path in rows:
        iou, pooled, boxes, _, p50 = evaluate(path, onnx_path, images)
        _, scene_pooled, scene_boxes, _, _ = evaluate(path, onnx_path, scenes)
        print(f"| {name} | {iou:.2f} | {pooled:.2f} | {boxes:.2f} | {scene_pooled:.2f} | {scene_boxes:.2f} | {p50:.1f} "
              f"| {delegation(path).partitions} |", flush=True)  # fmt: skip
    if len(rows) > 1:
        iou, pooled, boxes, _ = noise_floor(onnx_path, images, rows[1][1])
        _, scene_pooled, scene_boxes, _ = noise_floor(onnx_path, scenes, rows[1][1])
        print(
            f"| float32 ONNX, its input rounded to the int8 input grid (noise floor) | {iou:.2f} | {pooled:.2f} | {boxes:.2f} "
            f"| {scene_pooled:.2f} | {scene_boxes:.2f} | - | - |"
        )


if __name__ == "__main__":
    main()
