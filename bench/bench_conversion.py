"""Conversion benchmark: edgesep vs onnx2tf on the same ONNX files.

Per model and tool: converts?, wall time, TFLite op count, TRANSPOSE count, and the
float max-abs / cosine vs onnxruntime on the held-out images.

    python bench/bench_conversion.py [--models a,b] [--quick] [--fresh]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import artifacts  # noqa: E402
import common  # noqa: E402
import onnx2tf_tool  # noqa: E402

HEADERS = ("model", "tool", "converts", "seconds", "ops", "TRANSPOSE", "max-abs vs ORT", "relative", "cosine", "error")


def measure(spec: common.ModelSpec, *, quick: bool, fresh: bool, skip_onnx2tf: bool = False) -> list[dict]:
    data = common.dataset(spec, quick=quick)
    try:
        onnx_file = common.onnx_path(spec, fresh=fresh)
    except subprocess.SubprocessError as error:  # export failed: nothing for either tool to convert
        return [_row(spec.name, tool, None, f"ONNX export failed: {error}") for tool in ("edgesep", "onnx2tf")]
    reference = common.run_onnx(onnx_file, data.eval)
    rows = []
    built = (artifacts.edgesep_float(spec, fresh=fresh), artifacts.onnx2tf_float(spec, fresh=fresh, build_missing=not skip_onnx2tf))
    for artifact in built:
        row = _row(spec.name, artifact.tool, artifact.seconds, artifact.error)
        row["converts"] = artifact.ok
        if artifact.ok:
            histogram = common.op_histogram(artifact.path)
            outputs, _, error = common.timed(lambda a=artifact: artifacts.run(a, data.eval))
            row.update(op_histogram=histogram, ops=sum(histogram.values()), transposes=histogram.get("TRANSPOSE", 0))
            if error is None:
                f = common.fidelity(reference, outputs)
                row.update(max_abs=f["max_abs"], relative=f["relative"], cosine=f["cosine"])
            else:
                row.update(converts=False, error=f"runs but fails on inputs: {error}")
        rows.append(row)
    return rows


def _row(model: str, tool: str, seconds: float | None, error: str | None) -> dict:
    return {
        "model": model,
        "tool": tool,
        "converts": False,
        "seconds": seconds,
        "ops": None,
        "transposes": None,
        "op_histogram": None,
        "max_abs": None,
        "relative": None,
        "cosine": None,
        "error": error,
    }


def table(rows: list[dict]) -> str:
    return common.markdown_table(
        HEADERS,
        [
            (
                r["model"],
                r["tool"],
                r["converts"],
                r["seconds"],
                r["ops"],
                r["transposes"],
                r["max_abs"],
                r["relative"],
                r["cosine"],
                (r["error"] or "")[:80],
            )
            for r in rows
        ],
    )


def summary(rows: list[dict]) -> str:
    counts = {tool: sum(1 for r in rows if r["tool"] == tool and r["converts"]) for tool in ("edgesep", "onnx2tf")}
    total = len({r["model"] for r in rows})
    skipped = sum(1 for r in rows if r["tool"] == "onnx2tf" and r["error"] == artifacts.NOT_RUN)
    text = f"converted: edgesep {counts['edgesep']}/{total}, onnx2tf {counts['onnx2tf']}/{total}"
    return text + (f" ({skipped} onnx2tf conversions not run)" if skipped else "")


def startup_seconds() -> dict[str, float | None]:
    """What each tool pays before converting anything: importing TensorFlow here, process start for onnx2tf."""
    _, edgesep_import, _ = common.timed(lambda: __import__("tensorflow"))
    onnx2tf_start = None
    if onnx2tf_tool.available():
        _, onnx2tf_start, _ = common.timed(
            lambda: subprocess.run([str(onnx2tf_tool.EXECUTABLE), "-h"], capture_output=True, timeout=600, check=True)
        )
    return {"edgesep_tensorflow_import": edgesep_import, "onnx2tf_process_start": onnx2tf_start}


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    startup = startup_seconds()  # before the loop, so that no edgesep row includes the TensorFlow import
    rows: list[dict] = []
    for name in args.models:
        print(f"[conversion] {name}", file=sys.stderr, flush=True)
        rows += measure(common.MODELS[name], quick=args.quick, fresh=args.fresh, skip_onnx2tf=args.skip_onnx2tf)
    print(table(rows))
    print()
    print(summary(rows))
    print(
        f"startup (not in the rows): edgesep imports TensorFlow in {common.fmt(startup['edgesep_tensorflow_import'])} s; "
        f"onnx2tf's process starts (onnx2tf -h) in {common.fmt(startup['onnx2tf_process_start'])} s per conversion"
    )
    path = common.write_results("conversion", args, rows, extra={"onnx2tf_version": onnx2tf_tool.version(), "startup_seconds": startup})
    print(f"\nJSON: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
