"""Quantization-aware fine-tuning (issue #13, item 5): int8 with and without QAT, per-channel and per-tensor weights.

    python bench/bench_qat.py [digits] [mtcnn_onet]

Per model, four int8 models from ``edgesep.quantize.quantize`` (min/max ranges; ``qat_epochs`` 0 = plain PTQ),
each measured on held-out data against the float32 TFLite model: agreement and the task metric, p50 of float and
int8 (batch 1, 1 thread) and XNNPACK partitions (``convert.tflite_inspect.delegation``; QAT changes weights only,
so the graph, the size and the partitions stay those of PTQ); cosine: all outputs of a sample against float32's,
averaged over the samples.

* digits: the trained SepCNN (``edgesep.models.default``), calibration ``digits`` (300 samples), QAT 3 epochs;
  evaluation: the labelled digits test split (360 images): top-1 agreement with float32 and accuracy.
* mtcnn_onet: facenet-pytorch's pretrained ONet exported by edgesep, calibration 100 lfw_subset crops (50 faces
  + 50 non-faces, ``zoo.lfw_crops``), QAT 8 epochs (4 steps each); evaluation: the other 100 crops: face/no-face
  agreement at 0.7 (``face_metrics``), box error on faces, and face accuracy against the lfw labels.

Writes bench/results/qat.json and prints a Markdown table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch._dynamo  # noqa: F401  (before TensorFlow: triton segfaults when imported after it)

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "qat"
RESULTS = BENCH / "results" / "qat.json"
sys.path.insert(0, str(BENCH.parent))

import numpy as np  # noqa: E402

LATENCY_RUNS = 100


def digits_case():
    from edgesep.data.digits import load_digits_split
    from edgesep.export import export
    from edgesep.models.default import load_default_model

    onnx_path = WORK / "digits.onnx"
    if not onnx_path.is_file():
        export(load_default_model(), onnx_path, force=True)
    split = load_digits_split()

    def metrics(reference, got):
        ref, out = reference[0].argmax(1), got[0].argmax(1)
        return {"top-1 agreement": float(np.mean(ref == out)), "accuracy": float(np.mean(out == split.y_test))}

    return dict(onnx=onnx_path, torch_model="default", calibration="digits", samples=300, holdout=100, epochs=3,
                inputs=split.x_test, metrics=metrics)  # fmt: skip


def onet_case():
    from edgesep.quantize import face_metrics
    from edgesep.testing import zoo

    model = next(m for m in zoo.ZOO if m.name == "mtcnn_onet")
    onnx_path = model.onnx_path(WORK)
    crops, faces = zoo.lfw_crops(model.shape[2])
    crops = (crops - np.asarray(model.mean, np.float32)[None, :, None, None]) / np.asarray(model.std, np.float32)[None, :, None, None]
    pick = np.zeros(len(crops), bool)
    pick[np.r_[0:50, 100:150]] = True
    calibration = WORK / "onet_calibration.npy"
    np.save(calibration, crops[pick].astype(np.float32))

    def metrics(reference, got):
        _, probability = face_metrics.onet_outputs(got)
        return {"face agreement": face_metrics.face_agreement(reference, got), "box error": face_metrics.box_error(reference, got),
                "face accuracy": float(np.mean((probability > face_metrics.THRESHOLD) == faces[~pick]))}  # fmt: skip

    return dict(onnx=onnx_path, torch_model=zoo.mtcnn_onet(), calibration=str(calibration), samples=100, holdout=0, epochs=8,
                inputs=crops[~pick].astype(np.float32), metrics=metrics)  # fmt: skip


def cosine(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    """Mean over samples of the cosine between all outputs of a sample, concatenated (float32 vs the candidate)."""
    ref = np.concatenate([np.asarray(o, np.float64).reshape(len(o), -1) for o in reference], axis=1)
    out = np.concatenate([np.asarray(o, np.float64).reshape(len(o), -1) for o in got], axis=1)
    return float(np.mean(np.sum(ref * out, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1) + 1e-30)))


def run(path: Path, inputs: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Outputs on every input (batch 1) and the p50 ms of LATENCY_RUNS runs of the first, 1 thread."""
    from edgesep.runners.tflite import TfliteRunner

    with TfliteRunner(path, threads=1) as runner:
        name = list(runner.input_names)[0]
        outputs = []
        for image in inputs:
            result = runner.infer({name: np.ascontiguousarray(image[None].transpose(0, 2, 3, 1))})
            outputs.append([np.asarray(result[n], np.float32) for n in runner.output_names])
        feed = {name: np.ascontiguousarray(inputs[:1].transpose(0, 2, 3, 1))}
        times = []
        for _ in range(LATENCY_RUNS):
            runner.infer(feed)
            times.append(runner.last_inference_ms or 0.0)
    return [np.concatenate([o[i] for o in outputs]) for i in range(len(outputs[0]))], float(np.median(times))


def bench(name: str) -> list[dict]:
    from edgesep.convert import convert
    from edgesep.convert.tflite_inspect import delegation
    from edgesep.quantize import quantize
    from edgesep.quantize.recipe import QuantRecipe

    WORK.mkdir(parents=True, exist_ok=True)
    case = digits_case() if name == "digits" else onet_case()
    float_path = WORK / f"{name}.float.tflite"
    convert(case["onnx"], float_path, force=True, tolerance=1.0)
    reference, float_ms = run(float_path, case["inputs"])
    rows = [{"model": name, "variant": "float32", "p50_ms": float_ms, "partitions": delegation(float_path).partitions,
             "size_bytes": float_path.stat().st_size, "cosine": 1.0, **case["metrics"](reference, reference)}]  # fmt: skip
    for per_channel in (True, False):
        for epochs in (0, case["epochs"]):
            label = ("per-channel" if per_channel else "per-tensor") + (f" + QAT {epochs} ep" if epochs else " PTQ")
            print(f"{name}: {label} ...", flush=True)
            target = WORK / f"{name}.{'pc' if per_channel else 'pt'}.qat{epochs}.tflite"
            recipe = QuantRecipe(per_channel=per_channel, samples=case["samples"], qat_epochs=epochs)
            started = time.perf_counter()
            result = quantize(case["onnx"], target, recipe=recipe, model=case["torch_model"] if epochs else None,
                              calibration=case["calibration"], holdout=case["holdout"], force=True)  # fmt: skip
            seconds = time.perf_counter() - started
            outputs, int8_ms = run(target, case["inputs"])
            qat = (result.prepared or {}).get("qat")
            rows.append({"model": name, "variant": label, "p50_ms": int8_ms, "partitions": delegation(target).partitions,
                         "size_bytes": result.size_bytes, "seconds": seconds, "qat": qat, "cosine": cosine(reference, outputs),
                         **case["metrics"](reference, outputs)})  # fmt: skip
            print(json.dumps(rows[-1], default=str), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    names = ("cosine", "top-1 agreement", "accuracy", "face agreement", "box error", "face accuracy")
    keys = [k for k in names if any(k in r for r in rows)]
    lines = ["| model | variant | " + " | ".join(keys) + " | QAT loss before -> after | p50 ms | XNNPACK partitions | size kB |",
             "|---" * (len(keys) + 6) + "|"]  # fmt: skip
    for r in rows:
        values = " | ".join("" if k not in r else f"{r[k]:.5f}" if k == "cosine" else f"{r[k]:.4f}" for k in keys)
        qat = r.get("qat")
        loss = f"{qat['loss_before']:.3g} -> {qat['loss_after']:.3g} (epoch {qat['best_epoch']})" if qat else ""
        size = r["size_bytes"] / 1e3
        lines.append(f"| {r['model']} | {r['variant']} | {values} | {loss} | {r['p50_ms']:.3f} | {r['partitions']} | {size:.1f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    names = argv or ["digits", "mtcnn_onet"]
    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in names:
        saved[name] = bench(name)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(saved, indent=1, default=str))
    print(table([row for name in saved for row in saved[name]]))


if __name__ == "__main__":
    main(sys.argv[1:])
