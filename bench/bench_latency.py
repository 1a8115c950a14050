"""Latency benchmark on this host: p50 of float vs int8 for edgesep, onnx2tf and onnxruntime.

TFLite models run in ai_edge_litert's interpreter (XNNPACK, ``num_threads``), ONNX models
in onnxruntime (``intra_op_num_threads``), each on a seeded random input after warm-up.
Ratios are to the fastest of the six variants at the same thread count; GMAC/s uses the
MAC count from edgesep.models.accounting.

    python bench/bench_latency.py [--models a,b] [--quick] [--threads 1,2] [--fresh]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import artifacts  # noqa: E402
import common  # noqa: E402
import numpy as np  # noqa: E402
import onnx2tf_tool  # noqa: E402

VARIANTS = (
    ("edgesep", "float"),
    ("edgesep", "int8"),
    ("onnx2tf", "float"),
    ("onnx2tf", "int8"),
    ("onnxruntime", "float"),
    ("onnxruntime", "int8"),
)


def build_all(spec: common.ModelSpec, *, quick: bool, fresh: bool, skip_onnx2tf: bool = False) -> dict[tuple[str, str], artifacts.Artifact]:
    data = common.dataset(spec, quick=quick)
    missing = not skip_onnx2tf
    return {
        ("edgesep", "float"): artifacts.edgesep_float(spec, fresh=fresh),
        ("edgesep", "int8"): artifacts.edgesep_int8(spec, data, fresh=fresh),
        ("onnx2tf", "float"): artifacts.onnx2tf_float(spec, fresh=fresh, build_missing=missing),
        ("onnx2tf", "int8"): artifacts.onnx2tf_int8(spec, data, fresh=fresh, build_missing=missing),
        ("onnxruntime", "float"): artifacts.ort_float(spec),
        ("onnxruntime", "int8"): artifacts.ort_int8(spec, data, fresh=fresh),
    }


def measure(spec: common.ModelSpec, *, quick: bool, fresh: bool, threads: tuple[int, ...], skip_onnx2tf: bool = False) -> list[dict]:
    built = build_all(spec, quick=quick, fresh=fresh, skip_onnx2tf=skip_onnx2tf)
    macs = common.macs(spec)
    runs, warmup = (10, 3) if quick else (30, 5)
    rows = []
    for count in threads:
        timings: dict[tuple[str, str], dict] = {}
        for key in VARIANTS:
            artifact = built[key]
            row = {
                "model": spec.name,
                "threads": count,
                "tool": key[0],
                "precision": key[1],
                "p50_ms": None,
                "p90_ms": None,
                "runs": runs,
                "warmup": warmup,
                "macs": macs,
                "gmacs_per_s": None,
                "ratio_to_best": None,
                "error": artifact.error,
            }
            if artifact.ok:
                times, _, error = common.timed(lambda a=artifact, n=count: artifacts.latency(a, threads=n, runs=runs, warmup=warmup))
                if error is None:
                    p50 = float(np.percentile(times, 50))
                    row.update(
                        p50_ms=p50, p90_ms=float(np.percentile(times, 90)), gmacs_per_s=(macs / (p50 * 1e-3) / 1e9) if macs else None
                    )
                else:
                    row["error"] = error
            timings[key] = row
        best = min((r["p50_ms"] for r in timings.values() if r["p50_ms"] is not None), default=None)
        for row in timings.values():
            if best and row["p50_ms"] is not None:
                row["ratio_to_best"] = row["p50_ms"] / best
        rows += timings.values()
    return rows


def wide_table(rows: list[dict]) -> str:
    """One line per model and thread count: p50 ms (ratio to best) per variant, plus the key ratios."""
    headers = (
        ["model", "MMACs", "thr"]
        + [f"{t} {p}" for t, p in VARIANTS]
        + ["edgesep int8 speed-up", "edgesep/onnx2tf f32", "edgesep/onnx2tf int8", "edgesep int8 GMAC/s"]
    )
    lines = []
    for (model, threads), group in _groups(rows).items():
        by = {(r["tool"], r["precision"]): r for r in group}
        cells = [model, (group[0]["macs"] or 0) / 1e6 if group[0]["macs"] else None, threads]
        for key in VARIANTS:
            r = by[key]
            cells.append("–" if r["p50_ms"] is None else f"{r['p50_ms']:.3g} ({r['ratio_to_best']:.2f}×)")
        cells += [
            _ratio(by[("edgesep", "float")], by[("edgesep", "int8")]),
            _ratio(by[("edgesep", "float")], by[("onnx2tf", "float")]),
            _ratio(by[("edgesep", "int8")], by[("onnx2tf", "int8")]),
            by[("edgesep", "int8")]["gmacs_per_s"],
        ]
        lines.append(cells)
    return common.markdown_table(headers, lines)


def _groups(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["threads"]), []).append(row)
    return groups


def _ratio(numerator: dict, denominator: dict) -> float | None:
    a, b = numerator["p50_ms"], denominator["p50_ms"]
    return None if a is None or b is None or b == 0 else a / b


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    rows: list[dict] = []
    for name in args.models:
        print(f"[latency] {name}", file=sys.stderr, flush=True)
        rows += measure(common.MODELS[name], quick=args.quick, fresh=args.fresh, threads=args.threads, skip_onnx2tf=args.skip_onnx2tf)
    print(wide_table(rows))
    print("\n'edgesep int8 speed-up' = edgesep float p50 / edgesep int8 p50; 'edgesep/onnx2tf' = p50 ratio (< 1: edgesep faster).")
    errors = sorted({f"{r['tool']} {r['precision']} on {r['model']}: {r['error']}" for r in rows if r["error"]})
    for line in errors:
        print(f"- {line[:160]}")
    path = common.write_results("latency", args, rows, extra={"onnx2tf_version": onnx2tf_tool.version()})
    print(f"\nJSON: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
