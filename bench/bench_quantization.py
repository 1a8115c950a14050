"""Quantization benchmark: edgesep int8 vs onnx2tf int8 vs onnxruntime quantize_static (QDQ).

All three get the same calibration samples and are compared with the onnxruntime float
model on the same held-out samples: int8 size, top-1 agreement, cosine, max-abs; on the
digits SepCNN also label accuracy (float and int8) on the digits test split.

    python bench/bench_quantization.py [--models a,b] [--quick] [--fresh]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import artifacts  # noqa: E402
import common  # noqa: E402
import numpy as np  # noqa: E402
import onnx2tf_tool  # noqa: E402

HEADERS = (
    "model",
    "tool",
    "int8 KiB",
    "float KiB",
    "seconds",
    "top-1 agree",
    "cosine",
    "max-abs",
    "accuracy int8",
    "accuracy float",
    "error",
)


def measure(spec: common.ModelSpec, *, quick: bool, fresh: bool, skip_onnx2tf: bool = False) -> list[dict]:
    data = common.dataset(spec, quick=quick)
    onnx_file = common.onnx_path(spec, fresh=fresh)
    reference = common.run_onnx(onnx_file, data.eval)
    float_accuracy = _accuracy(reference, data.labels)
    builders = (
        lambda: artifacts.edgesep_int8(spec, data, fresh=fresh),
        lambda: artifacts.onnx2tf_int8(spec, data, fresh=fresh, build_missing=not skip_onnx2tf),
        lambda: artifacts.ort_int8(spec, data, fresh=fresh),
    )
    rows = []
    for build in builders:
        artifact = build()
        row = {
            "model": spec.name,
            "tool": artifact.tool,
            "ok": artifact.ok,
            "seconds": artifact.seconds,
            "int8_bytes": None,
            "float_bytes": onnx_file.stat().st_size,
            "top1_agreement": None,
            "cosine": None,
            "max_abs": None,
            "accuracy_int8": None,
            "accuracy_float": float_accuracy,
            "error": artifact.error,
            "calib_samples": len(data.calib),
            "eval_samples": len(data.eval),
        }
        if artifact.ok:
            row["int8_bytes"] = artifact.path.stat().st_size
            outputs, _, error = common.timed(lambda a=artifact: artifacts.run(a, data.eval))
            if error is None:
                f = common.fidelity(reference, outputs)
                row.update(
                    top1_agreement=f["top1_agreement"],
                    cosine=f["cosine"],
                    max_abs=f["max_abs"],
                    accuracy_int8=_accuracy(outputs, data.labels),
                )
            else:
                row.update(ok=False, error=f"runs but fails on inputs: {error}")
        rows.append(row)
    return rows


def _accuracy(outputs: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return float(np.mean(outputs.argmax(axis=1) == labels))


def _kib(value: int | None) -> float | None:
    return None if value is None else value / 1024


def table(rows: list[dict]) -> str:
    return common.markdown_table(
        HEADERS,
        [
            (
                r["model"],
                r["tool"],
                _kib(r["int8_bytes"]),
                _kib(r["float_bytes"]),
                r["seconds"],
                r["top1_agreement"],
                r["cosine"],
                r["max_abs"],
                r["accuracy_int8"],
                r["accuracy_float"],
                (r["error"] or "")[:80],
            )
            for r in rows
        ],
    )


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    rows: list[dict] = []
    for name in args.models:
        print(f"[quantization] {name}", file=sys.stderr, flush=True)
        rows += measure(common.MODELS[name], quick=args.quick, fresh=args.fresh, skip_onnx2tf=args.skip_onnx2tf)
    print(table(rows))
    path = common.write_results("quantization", args, rows, extra={"onnx2tf_version": onnx2tf_tool.version()})
    print(f"\nJSON: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
