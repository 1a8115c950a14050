"""Shrinking the digits SepCNN: pruning, distillation and int8, measured end to end.

Rows: the baseline default SepCNN; pruned 50% + fine-tuned; a SepCNN distilled from the
standard-conv teacher; the same SepCNN trained on labels alone (same seed, epochs, trainer:
alpha=0); pruned 50% + distilled.  Each goes PyTorch -> ONNX -> float TFLite -> int8 TFLite
(calibrated on the digits training split) and is measured on the fixed digits test split.
Latency is the p50 of single-threaded TFLite invocations (batch 1) on this machine.

    python bench/shrink_digits.py [--epochs 12] [--out docs/shrink-digits.md] [--runs 300]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO_DIR = Path(__file__).resolve().parent.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

WORK_DIR = REPO_DIR / "bench" / ".work" / "shrink"


def tflite_eval(path: Path, x_nchw: np.ndarray, *, runs: int) -> tuple[np.ndarray, float]:
    """(predicted labels on every test image, p50 latency in ms over ``runs`` timed invocations)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    nhwc = tuple(inp["shape"])[-1] == x_nchw.shape[1]
    predictions = []
    for image in x_nchw:
        sample = image.transpose(1, 2, 0)[None] if nhwc else image[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            sample = np.clip(np.round(sample / scale + zero), -128, 127).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], sample.astype(inp["dtype"]))
        interpreter.invoke()
        predictions.append(int(interpreter.get_tensor(out["index"]).argmax()))
    times = []
    for i in range(runs + 10):
        started = time.perf_counter()
        interpreter.invoke()
        if i >= 10:
            times.append((time.perf_counter() - started) * 1e3)
    return np.array(predictions), float(np.percentile(times, 50))


def to_tflite(model, name: str, *, runs: int, data) -> dict:
    """Export, convert, quantize; accuracy, sizes and latency of the float and int8 models."""
    from edgesep.convert import convert
    from edgesep.export import export
    from edgesep.quantize import QuantRecipe, quantize

    folder = WORK_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path, float_path, int8_path = folder / "model.onnx", folder / "model.tflite", folder / "model.int8.tflite"
    export(model, onnx_path, input_shape=(1, 1, 16, 16), force=True)
    convert(onnx_path, float_path, force=True)
    quantize(onnx_path, int8_path, recipe=QuantRecipe(mode="int8"), calibration="digits", force=True)
    float_pred, float_p50 = tflite_eval(float_path, data.x_test, runs=runs)
    int8_pred, int8_p50 = tflite_eval(int8_path, data.x_test, runs=runs)
    return {
        "tflite_float_accuracy": float(np.mean(float_pred == data.y_test)),
        "int8_accuracy": float(np.mean(int8_pred == data.y_test)),
        "float_kib": float_path.stat().st_size / 1024,
        "int8_kib": int8_path.stat().st_size / 1024,
        "float_p50_ms": float_p50,
        "int8_p50_ms": int8_p50,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="fine-tune / distillation epochs")
    parser.add_argument("--runs", type=int, default=300, help="timed TFLite invocations per model")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the distilled-vs-labels study")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "shrink-digits.md")
    args = parser.parse_args(argv)

    import torch

    from edgesep.data.digits import load_digits_split
    from edgesep.distill import DistillConfig, distill
    from edgesep.distill.teacher import load_default_teacher
    from edgesep.models.default import load_default_model
    from edgesep.models.sepcnn import sepcnn
    from edgesep.models.training import evaluate_accuracy
    from edgesep.prune import PruneConfig, prune
    from edgesep.prune.cost import count_macs, count_params

    data = load_digits_split()
    shape = (1, 1, 16, 16)
    started = time.perf_counter()
    baseline = load_default_model()
    teacher = load_default_teacher()

    def student(seed: int = 0):
        torch.manual_seed(seed)
        return sepcnn()

    distill_config = DistillConfig(epochs=args.epochs, temperature=4.0, alpha=0.7, seed=0)
    models: dict[str, object] = {"baseline SepCNN": baseline}
    for criterion in ("l1", "bn"):
        models[f"pruned 50% ({criterion}) + fine-tune"] = prune(
            baseline, config=PruneConfig(ratio=0.5, criterion=criterion, finetune_epochs=args.epochs, seed=0), data=data
        ).model
    models["distilled (T=4, alpha=0.7)"] = distill(student(), teacher, data, config=distill_config).model
    models["labels only (alpha=0)"] = distill(student(), teacher, data, config=DistillConfig(epochs=args.epochs, alpha=0.0, seed=0)).model
    pruned = prune(baseline, config=PruneConfig(ratio=0.5, criterion="bn")).model
    models["pruned 50% (bn) + distilled"] = distill(copy.deepcopy(pruned), teacher, data, config=distill_config).model
    models["teacher (standard conv)"] = teacher

    rows = []
    for name, model in models.items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        row = {
            "model": name,
            "float_accuracy": evaluate_accuracy(model, data.x_test, data.y_test),
            "params": count_params(model),
            "macs": count_macs(model, shape),
        }
        row.update(to_tflite(model, slug, runs=args.runs, data=data))
        rows.append(row)
        print(json.dumps(row), flush=True)
    study = seed_study(baseline, teacher, data, epochs=args.epochs, seeds=args.seeds)
    text = render(rows, args, seconds=time.perf_counter() - started) + "\n" + render_study(study, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


def seed_study(baseline, teacher, data, *, epochs: int, seeds: int) -> dict[str, dict[str, list[float]]]:
    """Test accuracy of labels-only vs distilled training for several seeds (full and pruned student)."""
    import torch

    from edgesep.distill import DistillConfig, distill
    from edgesep.models.sepcnn import sepcnn
    from edgesep.prune import PruneConfig, prune

    pruned = prune(baseline, config=PruneConfig(ratio=0.5, criterion="bn")).model
    study: dict[str, dict[str, list[float]]] = {}
    for student_name in ("SepCNN from scratch", "pruned 50% (bn)"):
        for label, alpha in (("labels only", 0.0), ("distilled T=4 alpha=0.7", 0.7)):
            accuracies = []
            for seed in range(seeds):
                torch.manual_seed(seed)
                student = sepcnn() if student_name.startswith("SepCNN") else copy.deepcopy(pruned)
                config = DistillConfig(epochs=epochs, temperature=4.0, alpha=alpha, seed=seed)
                accuracies.append(distill(student, teacher, data, config=config).student_accuracy)
            study.setdefault(student_name, {})[label] = accuracies
            print(student_name, label, accuracies, flush=True)
    return study


def render_study(study: dict[str, dict[str, list[float]]], args) -> str:
    lines = [
        f"## Distilled vs labels only over {args.seeds} seeds",
        "",
        "Same student, trainer, epochs and seed per column pair; only the loss differs (alpha=0 is pure "
        "cross-entropy). Test accuracy per seed and mean:",
        "",
        "| student | training | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | mean |",
        "|" + "---|" * (args.seeds + 3),
    ]
    for student, runs in study.items():
        for label, accuracies in runs.items():
            cells = " | ".join(f"{a:.4f}" for a in accuracies)
            lines.append(f"| {student} | {label} | {cells} | {np.mean(accuracies):.4f} |")
    lines.append("")
    return "\n".join(lines) + "\n"


def render(rows: list[dict], args, *, seconds: float) -> str:
    base = rows[0]
    header = ("model", "float acc", "int8 acc", "params", "MACs", "MACs vs base", "float .tflite KiB",
              "int8 .tflite KiB", "p50 float ms", "p50 int8 ms")  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["model"], f"{r['float_accuracy']:.4f}", f"{r['int8_accuracy']:.4f}", f"{r['params']:,}",
            f"{r['macs']:,}", f"{100 * (r['macs'] / base['macs'] - 1):+.0f}%", f"{r['float_kib']:.1f}",
            f"{r['int8_kib']:.1f}", f"{r['float_p50_ms']:.4f}", f"{r['int8_p50_ms']:.4f}",
        ]) + " |")  # fmt: skip
    by = {r["model"]: r for r in rows}
    pruned, pruned_l1 = by["pruned 50% (bn) + fine-tune"], by["pruned 50% (l1) + fine-tune"]
    distilled, labels = by["distilled (T=4, alpha=0.7)"], by["labels only (alpha=0)"]
    pruned_distilled = by["pruned 50% (bn) + distilled"]
    drop = 100 * (base["float_accuracy"] - pruned["float_accuracy"])
    drop_l1 = 100 * (base["float_accuracy"] - pruned_l1["float_accuracy"])
    fewer = 100 * (1 - pruned["macs"] / base["macs"])
    gain = 100 * (distilled["float_accuracy"] - labels["float_accuracy"])
    gain_pruned = 100 * (pruned_distilled["float_accuracy"] - pruned["float_accuracy"])
    return "\n".join(
        [
            "# Shrinking the digits SepCNN: pruning, distillation, int8",
            "",
            "Produced by `python bench/shrink_digits.py` (seeded; digits test split, 360 images). "
            f"Fine-tune/distillation epochs: {args.epochs}; latency: p50 of {args.runs} single-thread TFLite "
            f"invocations (batch 1) on {platform.machine()} {platform.processor() or ''} (a shared, loaded "
            f"machine: compare rows, not absolute numbers). Total {seconds / 60:.1f} min.",
            "",
            *lines,
            "",
            "Targets from issue #10, measured:",
            f"- pruned 50% (bn criterion) + fine-tune: {drop:.2f} points below baseline (target: within 1), "
            f"{fewer:.0f}% fewer MACs (target: >= 40%) -> {'met' if drop <= 1 and fewer >= 40 else 'NOT met'}. "
            f"With the l1 criterion: {drop_l1:.2f} points below.",
            f"- distilled SepCNN vs the same student on labels alone: {gain:+.2f} points "
            f"-> {'at least as accurate' if gain >= 0 else 'LESS accurate (reported as measured)'}. "
            f"The pruned model distilled vs fine-tuned on labels (same trainer and epochs): {gain_pruned:+.2f} points.",
            "- one test image is 0.28 points: differences of a point or less are a few images on one seed.",
            "",
            "Rows: `labels only` is the same SepCNN, seed and trainer with alpha=0 (pure cross-entropy). "
            "Pruned rows remove 50% of every channel group of the trained baseline (channels rounded to 8) by L1 filter "
            "norm or BN scale (network slimming) and retrain 12 epochs on labels, or against the standard-conv teacher "
            "(100% test accuracy, 50x the MACs); int8 = full-integer weights/activations calibrated on 300 training images "
            "with float I/O.",
            "",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
