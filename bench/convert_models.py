"""Conversion benchmark over the reference networks: edgesep.convert on each, side by side with onnxruntime.

Per model: export + conversion time, TFLite op count, TRANSPOSE count, max-abs / relative error vs
onnxruntime, and the float TFLite latency next to onnxruntime's latency on the same inputs (1 thread,
median of ``--runs``).  Prints a Markdown table; ``--json PATH`` / ``--markdown PATH`` also save them.

    python bench/convert_models.py [--models resnet18,mobilenet_v2] [--input-size 224] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# torchvision before TensorFlow: importing it after TF crashes the process
import torch
import torchvision

EDGESEP_MODELS = ("sepcnn", "mobilenet_v1", "mobilenet_v2")
TORCHVISION_MODELS = (
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "shufflenet_v2_x1_0",
    "mnasnet0_5",
    "efficientnet_b0",
    "squeezenet1_1",
    "resnet18",
)
ALL = tuple(f"edgesep:{m}" for m in EDGESEP_MODELS) + tuple(f"torchvision:{m}" for m in TORCHVISION_MODELS)
HEADERS = ("model", "input", "converts", "export s", "convert s", "ops", "TRANSPOSE", "max-abs", "relative", "TFLite ms", "ORT ms", "error")


def build(name: str, size: int) -> tuple[torch.nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    family, model = name.split(":")
    if family == "torchvision":
        return getattr(torchvision.models, model)(weights=None).eval(), (1, 3, size, size)
    if model == "sepcnn":
        from edgesep.models.sepcnn import sepcnn

        module = sepcnn()
        return module.eval(), tuple(module.input_shape)
    from edgesep.models import mobilenet

    return getattr(mobilenet, model)(input_size=size).eval(), (1, 3, size, size)


def median_ms(function, *, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def measure(name: str, *, size: int, runs: int, workdir: Path) -> dict:
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    from edgesep.convert import convert
    from edgesep.export import export

    row = {"model": name, "input": None, "converts": False, "error": None}
    module, shape = build(name, size)
    row["input"] = "x".join(str(d) for d in shape)
    onnx_path = workdir / f"{name.replace(':', '_')}.onnx"
    tflite_path = onnx_path.with_suffix(".tflite")
    started = time.perf_counter()
    export(module, onnx_path, input_shape=shape, force=True)
    row["export_s"] = time.perf_counter() - started
    try:
        result = convert(onnx_path, tflite_path, force=True)
    except Exception as error:  # a benchmark row, not a crash
        row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        return row
    row.update(
        converts=True,
        convert_s=result.seconds,
        ops=sum(result.op_histogram.values()),
        transposes=result.transposes,
        max_abs=result.fidelity.max_abs,
        relative=result.fidelity.relative,
        op_histogram=result.op_histogram,
    )
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: batch}
    row["ort_ms"] = median_ms(lambda: session.run(None, feed), runs=runs)
    interpreter = Interpreter(model_path=str(tflite_path), num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    interpreter.set_tensor(index, np.ascontiguousarray(batch.transpose(0, 2, 3, 1)))
    row["tflite_ms"] = median_ms(interpreter.invoke, runs=runs)
    return row


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    keys = (
        "model",
        "input",
        "converts",
        "export_s",
        "convert_s",
        "ops",
        "transposes",
        "max_abs",
        "relative",
        "tflite_ms",
        "ort_ms",
        "error",
    )
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ALL), help="comma-separated family:name (default: all)")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    names = [n if ":" in n else (f"edgesep:{n}" if n == "sepcnn" else f"torchvision:{n}") for n in args.models.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgesep-bench-") as tmp:
        for name in names:
            print(f"converting {name} ...", file=sys.stderr, flush=True)
            rows.append(measure(name, size=args.input_size, runs=args.runs, workdir=Path(tmp)))
    table = markdown(rows)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    return 0 if all(r["converts"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
