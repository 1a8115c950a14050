"""Real-model zoo: ops, XNNPACK partitions and p50 latency of edgesep's float32 and int8 models, and of the
converter as it was before the runtime-view lowerings (``--baseline GIT_REF``: converted from a worktree of
that commit), measured side by side in one run (interleaved, 1 thread).

    python bench/bench_zoo.py [--baseline ee2094a] [--anchors [--rounds 10]] [--runs 50] [--reuse] [MODEL ...]

``--anchors`` adds the files of onnx2tf (ONNX models) and litert-torch (PyTorch models) from
bench/.work/zoo/anchors/<tool>/<model>{,_int8}.tflite, built in their own venvs by bench/anchors_zoo.py
(bench/setup_onnx2tf.sh, bench/setup_litert_torch.sh), and prints a second table: edgesep's p50 over the
best anchor's, float and int8 (with ``--rounds R``: R rounds of ``--runs`` interleaved runs, the ratio being the
median of the per-round ratios). ``--reuse`` times the files an earlier run wrote instead of converting again.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch._dynamo  # noqa: F401  (before TensorFlow: triton segfaults when imported after it)

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "zoo"
sys.path.insert(0, str(BENCH.parent))

import numpy as np  # noqa: E402

from edgesep.convert import convert  # noqa: E402
from edgesep.convert.tflite_inspect import delegation  # noqa: E402
from edgesep.quantize import quantize  # noqa: E402
from edgesep.quantize.recipe import QuantRecipe  # noqa: E402
from edgesep.testing.zoo import ZOO  # noqa: E402


def p50s(paths: list[Path], *, runs: int) -> list[float]:
    """Median latency (ms) of each model at 1 thread, runs interleaved across models (noise hits all alike)."""
    return [float(np.median(t)) for t in latencies(paths, runs=runs)]


def round_ratios(paths: list[Path], *, runs: int, rounds: int) -> tuple[list[float], list[list[float]]]:
    """Each model's median of its per-round p50s, and the per-round p50s: ``rounds`` rounds of ``runs``
    interleaved runs (on a shared host a ratio of per-round p50s is steadier than a ratio of two overall p50s)."""
    per_round = [[float(np.median(t)) for t in latencies(paths, runs=runs)] for _ in range(rounds)]
    everything = [[r[i] for r in per_round] for i in range(len(paths))]
    return [float(np.median(t)) for t in everything], per_round


def latencies(paths: list[Path], *, runs: int) -> list[list[float]]:
    """Per-model latencies (ms) at 1 thread, runs interleaved across models."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for path in paths:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        for _ in range(3):
            interpreter.invoke()
        interpreters.append(interpreter)
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(runs):
        for index, interpreter in enumerate(interpreters):
            start = time.perf_counter()
            interpreter.invoke()
            times[index].append((time.perf_counter() - start) * 1e3)
    return times


def baseline_models(ref: str, names: list[str]) -> dict[str, Path]:
    """float32 + int8 files converted by the edgesep of ``ref`` (a git worktree; same zoo inputs)."""
    tree = WORK / f"baseline-{ref}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(BENCH.parent), "worktree", "add", "--detach", str(tree), ref], check=True)
    script = (
        "import torch._dynamo, sys, numpy as np\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(tree)!r})\n"
        "from edgesep.convert import convert\n"
        "from edgesep.quantize import quantize\n"
        "from edgesep.quantize.recipe import QuantRecipe\n"
        f"work = Path({str(WORK)!r})\n"
        "for name, onnx, shape in [" + ", ".join(f"({n!r}, {str(WORK / (n + '.onnx.path'))!r}, None)" for n in names) + "]:\n"
        "    onnx = Path(Path(onnx).read_text())\n"
        "    shape = tuple(np.load(work / f'{name}.calib.npy').shape[1:])\n"
        "    try:\n"
        "        convert(onnx, work / f'{name}.base.tflite', input_shape=(1, *shape), force=True, tolerance=1.0)\n"
        "        quantize(onnx, work / f'{name}.base_int8.tflite', recipe=QuantRecipe(mode='int8', samples=16),\n"
        "                 calibration=str(work / f'{name}.calib.npy'), input_shape=(1, *shape), holdout=8, force=True)\n"
        "    except Exception as error:\n"
        "        print(name, 'baseline failed:', error, file=sys.stderr)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False, cwd=str(tree))
    return {n: WORK / f"{n}.base.tflite" for n in names}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--baseline", default=None, help="git ref of an earlier edgesep to compare with")
    parser.add_argument("--anchors", action="store_true", help="also time onnx2tf's and litert-torch's files")
    parser.add_argument("--rounds", type=int, default=1, help="anchor table: rounds of --runs interleaved runs each")
    parser.add_argument("--reuse", action="store_true", help="time the files of an earlier run, do not convert")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = [m for m in ZOO if m.available() and (not args.models or m.name in args.models)]
    rows = []
    if args.reuse:
        rows = [(m.name, WORK / f"{m.name}.tflite", WORK / f"{m.name}_int8.tflite") for m in chosen]
        chosen = []
    for model in chosen:
        onnx = model.onnx_path(WORK)
        (WORK / f"{model.name}.onnx.path").write_text(str(onnx))
        calib = WORK / f"{model.name}.calib.npy"
        np.save(calib, model.inputs(24, seed=1))
        fp = convert(onnx, WORK / f"{model.name}.tflite", input_shape=model.shape, force=True)
        q = quantize(onnx, WORK / f"{model.name}_int8.tflite", recipe=QuantRecipe(mode="int8", samples=16),
                     calibration=str(calib), input_shape=model.shape, holdout=8, force=True)  # fmt: skip
        rows.append((model.name, fp.path, q.path))
    base = baseline_models(args.baseline, [r[0] for r in rows]) if args.baseline else {}
    if not base:
        print("| model | ops f32 | partitions f32 / int8 | p50 f32 ms | p50 int8 ms | int8 speed-up |")
        print("|---|---:|---|---:|---:|---:|")
    if base:
        print(
            "| model | ops f32 | partitions f32 / int8 | p50 f32 ms | p50 int8 ms | int8 speed-up |"
            " base partitions f32 / int8 | base p50 f32 / int8 ms | f32 / int8 vs base |"
        )
        print("|---|---:|---|---:|---:|---:|---|---|---|")
    for name, fpath, qpath in rows:
        paths = [fpath, qpath]
        bpaths = [base[name], base[name].with_name(f"{name}.base_int8.tflite")] if base else []
        have = [p for p in bpaths if p.is_file()]
        times = p50s(paths + have, runs=args.runs)
        df, dq = delegation(fpath), delegation(qpath)
        line = (f"| {name} | {df.ops} | {df.partitions} / {dq.partitions}"
                f"{'' if dq.single_partition else ' (' + ', '.join(sorted({o.op for o in dq.left_out})) + ' out)'}"
                f" | {times[0]:.3f} | {times[1]:.3f} | {times[0] / times[1]:.2f}x |")  # fmt: skip
        if base:
            if len(have) == 2:
                bf, bq = delegation(have[0]), delegation(have[1])
                line += (f" {bf.partitions} / {bq.partitions} | {times[2]:.3f} / {times[3]:.3f} |"
                         f" {times[2] / times[0]:.2f}x / {times[3] / times[1]:.2f}x faster |")  # fmt: skip
            else:
                line += " did not convert | - | - |"
        print(line, flush=True)
    if args.anchors:
        anchor_table([(name, fpath, qpath) for name, fpath, qpath in rows], runs=args.runs, rounds=args.rounds)


TOOLS = ("onnx2tf", "litert-torch")


def anchor_table(rows, *, runs: int, rounds: int = 1) -> None:
    """edgesep vs the best of onnx2tf / litert-torch, float and int8, timed interleaved in one process: p50s, and
    the ratio to the best anchor as the median of the per-round ratios (their range in brackets)."""
    print()
    print("| model | precision | edgesep p50 ms (partitions) | onnx2tf p50 ms (partitions) | litert-torch p50 ms (partitions) "
          "| edgesep / best anchor (range over rounds) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|")
    for name, fpath, qpath in rows:
        for precision, ours in (("float32", fpath), ("int8", qpath)):
            suffix = "" if precision == "float32" else "_int8"
            theirs = {tool: WORK / "anchors" / tool / f"{name}{suffix}.tflite" for tool in TOOLS}
            present = {tool: path for tool, path in theirs.items() if path.is_file()}
            times, per_round = round_ratios([ours, *present.values()], runs=runs, rounds=rounds)
            cells = {tool: f"{t:.3f} ({delegation(path).partitions})" for (tool, path), t in zip(present.items(), times[1:])}
            ratios = [r[0] / min(r[1:]) for r in per_round] if present else []
            ratio = "-"
            if ratios:
                ratio = f"{np.median(ratios):.2f}" + (f" ({min(ratios):.2f}-{max(ratios):.2f})" if rounds > 1 else "")
            print(f"| {name} | {precision} | {times[0]:.3f} ({delegation(ours).partitions}) | "
                  f"{cells.get('onnx2tf', '-')} | {cells.get('litert-torch', '-')} | {ratio} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
