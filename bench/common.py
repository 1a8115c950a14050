"""Shared pieces of the benchmark scripts: model list, ONNX cache, held-out images, runners, tables.

Everything is seeded.  Models use random weights (``weights=None``; nothing is downloaded);
their BatchNorm statistics are re-estimated on the calibration images so that activations
have realistic ranges (an untrained net with default BN statistics has exploding or dead
activations, which would make int8 comparisons meaningless).  The digits SepCNN is the real
trained default model, evaluated on the real digits test split.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO_DIR) not in sys.path:  # `python bench/x.py` from a clone without `pip install -e .`
    sys.path.insert(0, str(REPO_DIR))

SEED = 0
IMAGE_SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# Disjoint scikit-image sample images: calibration crops never come from a held-out image.
EVAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "clock", "coins", "colorwheel")
CALIB_IMAGES = (
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "grass",
    "gravel",
    "brick",
    "moon",
    "page",
    "text",
    "cell",
    "logo",
)


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model: how to build it and what data it sees."""

    name: str
    family: str  # "sepcnn", "mobilenet", "other"
    data: str  # "images" (224x224 RGB, ImageNet normalisation) or "digits"
    build: Callable[[], Any] = field(repr=False, compare=False)
    input_shape: tuple[int, ...] = (1, 3, IMAGE_SIZE, IMAGE_SIZE)


def _torchvision(name: str) -> Callable[[], Any]:
    def build():
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build


def _edgesep_mobilenet(name: str) -> Callable[[], Any]:
    def build():
        from edgesep.models import mobilenet

        return getattr(mobilenet, name)()

    return build


def _digits_sepcnn():
    from edgesep.models.default import load_default_model

    return load_default_model()


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("sepcnn", "sepcnn", "digits", _digits_sepcnn, (1, 1, 16, 16)),
        ModelSpec("mobilenet_v1", "mobilenet", "images", _edgesep_mobilenet("mobilenet_v1")),
        ModelSpec("mobilenet_v2", "mobilenet", "images", _edgesep_mobilenet("mobilenet_v2")),
        ModelSpec("tv_mobilenet_v2", "mobilenet", "images", _torchvision("mobilenet_v2")),
        ModelSpec("tv_mobilenet_v3_small", "mobilenet", "images", _torchvision("mobilenet_v3_small")),
        ModelSpec("tv_mobilenet_v3_large", "mobilenet", "images", _torchvision("mobilenet_v3_large")),
        ModelSpec("tv_shufflenet_v2_x1_0", "other", "images", _torchvision("shufflenet_v2_x1_0")),
        ModelSpec("tv_mnasnet0_5", "other", "images", _torchvision("mnasnet0_5")),
        ModelSpec("tv_efficientnet_b0", "other", "images", _torchvision("efficientnet_b0")),
        ModelSpec("tv_squeezenet1_1", "other", "images", _torchvision("squeezenet1_1")),
        ModelSpec("tv_resnet18", "other", "images", _torchvision("resnet18")),
    )
}
QUICK_MODELS = ("sepcnn", "mobilenet_v2", "tv_mobilenet_v3_small")


# ----------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class BenchArgs:
    models: tuple[str, ...]
    quick: bool
    threads: tuple[int, ...]
    fresh: bool
    output: Path | None
    skip_onnx2tf: bool = False


def parse_args(description: str, argv: Sequence[str] | None = None) -> BenchArgs:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", default="", help=f"comma-separated subset of: {', '.join(MODELS)}")
    parser.add_argument("--quick", action="store_true", help=f"fewer images/runs; default models {','.join(QUICK_MODELS)}")
    parser.add_argument("--threads", default="1,2", help="thread counts for latency (default 1,2)")
    parser.add_argument("--fresh", action="store_true", help="rebuild cached ONNX/TFLite files in bench/.work")
    parser.add_argument("--output", type=Path, default=None, help="JSON output path (default bench/results/<script>.json)")
    parser.add_argument(
        "--skip-onnx2tf", action="store_true", help="do not build missing onnx2tf files (minutes per model); cached ones are still used"
    )
    ns = parser.parse_args(argv)
    if ns.models:
        names = tuple(n.strip() for n in ns.models.split(",") if n.strip())
    else:
        names = QUICK_MODELS if ns.quick else tuple(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    threads = tuple(int(t) for t in ns.threads.split(",") if t.strip())
    return BenchArgs(models=names, quick=ns.quick, threads=threads, fresh=ns.fresh, output=ns.output, skip_onnx2tf=ns.skip_onnx2tf)


# ----------------------------------------------------------------------------- data


def _sample_image(name: str) -> list[np.ndarray]:
    """RGB float32 [0, 1] HxWx3 images of one scikit-image sample (a stereo pair gives two)."""
    from skimage import data

    value = getattr(data, name)()
    images = list(value[:2]) if isinstance(value, tuple) else [value]
    out = []
    for image in images:
        image = np.asarray(image)
        if image.dtype == bool:
            image = image.astype(np.float32)
        elif image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        image = image.astype(np.float32)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        out.append(image[:, :, :3])
    return out


def _crops(images: list[np.ndarray], count: int, *, size: int, seed: int) -> np.ndarray:
    """``count`` seeded random square crops (50-100% of the short side, random flip), resized to size."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), dtype=np.float32)
    for i in range(count):
        image = images[i % len(images)]
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        top = int(rng.integers(0, h - side + 1))
        left = int(rng.integers(0, w - side + 1))
        crop = image[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = resize(crop, (size, size), anti_aliasing=True, preserve_range=True)
    return out


def image_batch(split: str, count: int, *, seed: int = SEED) -> np.ndarray:
    """NCHW float32 ImageNet-normalised crops: split "calib" or "eval" (disjoint source images)."""
    names = CALIB_IMAGES if split == "calib" else EVAL_IMAGES
    images = [im for name in names for im in _sample_image(name)]
    nhwc = _crops(images, count, size=IMAGE_SIZE, seed=seed + (0 if split == "calib" else 1))
    nhwc = (nhwc - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)).astype(np.float32)


@dataclass(frozen=True)
class DataSet:
    calib: np.ndarray  # NCHW float32
    eval: np.ndarray  # NCHW float32
    labels: np.ndarray | None  # eval labels when the data has them (digits)


def dataset(spec: ModelSpec, *, quick: bool) -> DataSet:
    calib_n, eval_n = (16, 16) if quick else (64, 48)
    if spec.data == "digits":
        from edgesep.data.digits import load_digits_split

        split = load_digits_split()
        rng = np.random.default_rng(SEED)
        calib = split.x_train[rng.choice(len(split.x_train), size=min(200, len(split.x_train)), replace=False)]
        n_eval = 100 if quick else len(split.x_test)
        return DataSet(calib=calib.astype(np.float32), eval=split.x_test[:n_eval].astype(np.float32), labels=split.y_test[:n_eval])
    return DataSet(calib=_cached_images("calib", calib_n), eval=_cached_images("eval", eval_n), labels=None)


def _cached_images(split: str, count: int) -> np.ndarray:
    path = WORK_DIR / "data" / f"{split}-{count}.npy"
    if path.is_file():
        return np.load(path)
    batch = image_batch(split, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, batch)
    return batch


# ----------------------------------------------------------------------------- models


def build_model(spec: ModelSpec):
    """The seeded eval-mode module; image models get BN statistics from the calibration crops."""
    import torch

    torch.manual_seed(SEED)
    model = spec.build()
    if spec.data == "images":
        recalibrate_batchnorm(model, _cached_images("calib", 64))
    return model.eval()


def recalibrate_batchnorm(model, images: np.ndarray, *, batch: int = 16) -> None:
    """Cumulative BN running statistics over ``images`` (train-mode forward, no gradient)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            model(torch.from_numpy(images[start : start + batch]))
    model.eval()


def onnx_path(spec: ModelSpec, *, fresh: bool = False) -> Path:
    """Export (once) into bench/.work/onnx/<name>.onnx with edgesep.export."""
    path = WORK_DIR / "onnx" / f"{spec.name}.onnx"
    if path.is_file() and not fresh:
        return path
    # A fresh process: importing torchvision after TensorFlow (which the benchmarks have
    # loaded by then) segfaults with torchvision 0.29 + TensorFlow 2.21.
    import subprocess

    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--export", spec.name], check=True, timeout=3600)
    return path


def _export(name: str) -> Path:
    from edgesep.export import export

    spec = MODELS[name]
    path = WORK_DIR / "onnx" / f"{spec.name}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    export(build_model(spec), path, input_shape=spec.input_shape, force=True)
    return path


def macs(spec: ModelSpec) -> int | None:
    """MAC count from edgesep.models.accounting (None if unavailable)."""
    try:
        from edgesep.models.accounting import count_model

        return int(count_model(onnx_path(spec)).total_macs)
    except Exception:  # accounting is another team's module; a failure must not stop the bench
        return None


# ----------------------------------------------------------------------------- running models


def onnx_session(path: Path, *, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: Path, batch_nchw: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """First output for every sample (the ONNX files have batch 1)."""
    session = onnx_session(path, threads=threads)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: batch_nchw[i : i + 1]})[0] for i in range(len(batch_nchw))])


def tflite_interpreter(path: Path, *, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def to_model_layout(sample_nchw: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """An NCHW sample in the TFLite input's layout (NHWC when the shapes say so)."""
    shape = tuple(int(d) for d in shape)
    if tuple(sample_nchw.shape) == shape:
        return sample_nchw
    nhwc = sample_nchw.transpose(0, 2, 3, 1)
    if tuple(nhwc.shape) == shape:
        return np.ascontiguousarray(nhwc)
    raise ValueError(f"cannot feed NCHW {sample_nchw.shape} to a TFLite input of shape {shape}")


def run_tflite(path: Path, batch_nchw: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """First output for every sample (edgesep's ``runners.tflite.run_tflite``: integer I/O (de)quantized), fed
    from NCHW samples in the model's layout."""
    from edgesep.runners.tflite import run_tflite as run

    shape = tflite_interpreter(path, threads=threads).get_input_details()[0]["shape"]
    samples = [[to_model_layout(batch_nchw[i : i + 1], shape)] for i in range(len(batch_nchw))]
    return run(path, samples, threads=threads).outputs[0]


def _random_feed(shape: Sequence[int], dtype) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    value = rng.standard_normal(tuple(int(d) for d in shape)).astype(np.float32)
    if dtype == np.float32:
        return value
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=value.shape).astype(dtype)


def time_tflite(path: Path, *, threads: int, runs: int, warmup: int) -> np.ndarray:
    """Latencies in ms of ``invoke`` on a seeded random input."""
    interpreter = tflite_interpreter(path, threads=threads)
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], _random_feed(inp["shape"], inp["dtype"]))
    for _ in range(warmup):
        interpreter.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times[i] = (time.perf_counter() - start) * 1e3
    return times


def time_onnx(path: Path, *, threads: int, runs: int, warmup: int) -> np.ndarray:
    """Latencies in ms of ``session.run`` on a seeded random input."""
    session = onnx_session(path, threads=threads)
    inp = session.get_inputs()[0]
    feed = {inp.name: _random_feed(inp.shape, np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times[i] = (time.perf_counter() - start) * 1e3
    return times


def op_histogram(path: Path) -> dict[str, int]:
    from edgesep.convert.tflite_inspect import op_histogram as histogram

    return histogram(path)


def fidelity(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float | None]:
    from edgesep.numerics import compare

    return compare(reference, candidate).to_dict()


def timed(fn: Callable[[], Any]) -> tuple[Any, float, str | None]:
    """(result, seconds, error one-liner) — a failing tool is a table cell, not a crash."""
    start = time.perf_counter()
    try:
        value = fn()
    except Exception as error:  # noqa: BLE001 - benchmarks report every failure
        message = str(error).strip().splitlines()
        return None, time.perf_counter() - start, f"{type(error).__name__}: {message[0] if message else ''}"[:200]
    return value, time.perf_counter() - start, None


# ----------------------------------------------------------------------------- output


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10**-digits or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def host_facts() -> dict[str, Any]:
    import os

    versions = {}
    for module in ("numpy", "onnxruntime", "ai_edge_litert", "tensorflow", "torch"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001
            versions[module] = None
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average_1_5_15": list(os.getloadavg()),
        **versions,
    }


def write_results(script: str, args: BenchArgs, rows: list[dict], *, extra: dict | None = None) -> Path:
    from edgesep.fileio import write_json

    path = args.output or RESULTS_DIR / f"{script}{'-quick' if args.quick else ''}.json"
    payload = {
        "script": script,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "models": list(args.models),
        "host": host_facts(),
        "rows": rows,
        **(extra or {}),
    }
    write_json(path, payload, force=True)
    return path


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


if __name__ == "__main__":  # `python bench/common.py --export NAME` (used by onnx_path)
    if len(sys.argv) == 3 and sys.argv[1] == "--export":
        print(_export(sys.argv[2]))
    else:
        raise SystemExit("usage: python bench/common.py --export MODEL")


def recipe_options(spelling: str) -> dict[str, Any]:
    """Recipe fields of a bench recipe spelling: "default" or an activation range ("mse"), then any of "+eq"
    (activations equalized on the ONNX graph, edgesep/quantize/equalize_onnx.py), "+adaround" (AdaRound of the int8
    weights, edgesep/quantize/adaround.py) and "+bias" (empirical bias correction of the int8 TFLite model,
    edgesep/quantize/int8_bias.py), "+headN" / "+tailN" (the first / last N % of the ops kept float: recipe
    float_ends), e.g. "mse+eq+adaround" or "mse+eq+head10"."""
    activation, *extras = spelling.split("+")
    known: dict[str, dict[str, Any]] = {"eq": {"equalize_activations": True}, "adaround": {"weight_rounding": "adaround"},
                                        "bias": {"bias_correction": "empirical"}}  # fmt: skip
    ends = {"head": 0.0, "tail": 0.0}
    unknown = [e for e in extras if e not in known and not (e[:4] in ends and e[4:].isdigit())]
    if unknown:
        raise SystemExit(f"unknown recipe spelling {spelling!r}: {unknown} (known: +{', +'.join(known)}, +headN, +tailN)")
    options: dict[str, Any] = {} if activation == "default" else {"activation_range": activation}
    for extra in extras:
        if extra in known:
            options.update(known[extra])
        else:
            ends[extra[:4]] = int(extra[4:]) / 100
    if any(ends.values()):
        options["float_ends"] = (ends["head"], ends["tail"])
    return options
