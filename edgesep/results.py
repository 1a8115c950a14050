"""Results files written by the on-device agent: ``<tag>.results.json`` + ``<tag>.outputs.npz``.

:class:`RunResults` is the host-side view of one model's run on one device.  It
is what ``edgesep validate``/``bench`` compare; because results are files, "run
on the Pi, compare on the laptop" is just two ``RunResults.load`` calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.errors import InputError
from edgesep.fileio import atomic_path, write_json

RESULTS_SUFFIX = ".results.json"
OUTPUTS_SUFFIX = ".outputs.npz"


def results_paths(results_dir: str | Path, tag: str) -> tuple[Path, Path]:
    """``(<dir>/<tag>.results.json, <dir>/<tag>.outputs.npz)``."""
    folder = Path(results_dir)
    return folder / f"{tag}{RESULTS_SUFFIX}", folder / f"{tag}{OUTPUTS_SUFFIX}"


@dataclass(frozen=True)
class LatencyStats:
    """Summary of the timed runs (warm-up excluded), in milliseconds."""

    count: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("count", "mean", "std", "min", "p50", "p90", "p99", "max")}


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class RunResults:
    """One model's run on one device: latencies, outputs and device facts."""

    tag: str
    model_name: str
    model_bytes: int
    latencies_ms: np.ndarray
    warmup: int
    threads: int | None
    outputs: np.ndarray | None  # first output, stacked over the batch (N, ...), float32; None for latency-only
    device: dict[str, Any]
    emulated: bool
    complete: bool
    error: str | None = None
    all_outputs: tuple[np.ndarray, ...] = ()
    output_names: tuple[str, ...] = ()
    samples: int = 0
    use_xnnpack: bool = True
    init_ms: float | None = None
    source: str = "agent"  # "agent" or "benchmark_model"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> str:
        runtime = self.device.get("runtime") or {}
        return f"{runtime.get('name', '?')} {runtime.get('version', '?')}"

    def latency_stats(self) -> LatencyStats:
        values = np.asarray(self.latencies_ms, dtype=np.float64)
        nan = float("nan")
        summary = self.extra.get("benchmark_model") if values.size == 0 else None
        if summary and summary.get("count"):  # benchmark_model reports a summary, not per-run times
            ms = {k: (summary[k] / 1000.0 if summary.get(k) is not None else nan) for k in ("avg_us", "std_us", "min_us", "max_us")}
            return LatencyStats(int(summary["count"]), ms["avg_us"], ms["std_us"], ms["min_us"], nan, nan, nan, ms["max_us"])
        if values.size == 0:
            return LatencyStats(0, nan, nan, nan, nan, nan, nan, nan)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return LatencyStats(
            count=int(values.size),
            mean=float(values.mean()),
            std=float(values.std()),
            min=float(values.min()),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            max=float(values.max()),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload (outputs live in the .npz)."""
        body = dict(self.extra)
        body.update(
            {
                "tag": self.tag,
                "model_name": self.model_name,
                "model_bytes": self.model_bytes,
                "latencies_ms": [float(v) for v in np.asarray(self.latencies_ms).ravel()],
                "warmup": self.warmup,
                "threads": self.threads,
                "device": self.device,
                "emulated": self.emulated,
                "complete": self.complete,
                "error": self.error,
                "output_names": list(self.output_names),
                "samples": self.samples,
                "use_xnnpack": self.use_xnnpack,
                "init_ms": self.init_ms,
                "source": self.source,
            }
        )
        return body

    def save(self, results_dir: str | Path, *, force: bool = False) -> Path:
        """Write ``<tag>.results.json`` (+ ``.outputs.npz`` when there are outputs); returns the JSON path."""
        json_path, npz_path = results_paths(results_dir, self.tag)
        outputs = self.all_outputs or ((self.outputs,) if self.outputs is not None else ())
        if outputs:
            arrays: dict[str, Any] = {f"output_{i}": np.asarray(v) for i, v in enumerate(outputs)}
            with atomic_path(npz_path, force=force) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
        write_json(json_path, self.to_dict(), force=force)
        return json_path

    @classmethod
    def load(cls, path: str | Path) -> RunResults:
        """Read ``<tag>.results.json`` and the ``<tag>.outputs.npz`` beside it (if any)."""
        json_path = Path(path)
        if json_path.is_dir():
            raise InputError(f"{json_path} is a folder; pass a <tag>{RESULTS_SUFFIX} file")
        if not json_path.name.endswith(RESULTS_SUFFIX):
            raise InputError(f"not a results file (expected *{RESULTS_SUFFIX}): {json_path}")
        try:
            body = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"results file not found: {json_path}") from None
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read results file {json_path}: {error}") from None
        missing = [key for key in ("tag", "model_name", "latencies_ms", "device") if key not in body]
        if missing:
            raise InputError(f"results file {json_path} lacks {', '.join(missing)}")
        tag = str(body["tag"])
        npz_path = json_path.with_name(json_path.name[: -len(RESULTS_SUFFIX)] + OUTPUTS_SUFFIX)
        arrays: tuple[np.ndarray, ...] = ()
        if npz_path.is_file():
            with np.load(npz_path, allow_pickle=False) as archive:
                keys = sorted(archive.files, key=lambda k: int(k.rsplit("_", 1)[-1]) if k[-1].isdigit() else 0)
                arrays = tuple(np.asarray(archive[key]) for key in keys)
        known = {
            "tag", "model_name", "model_bytes", "latencies_ms", "warmup", "threads", "device", "emulated",
            "complete", "error", "output_names", "samples", "use_xnnpack", "init_ms", "source",
        }  # fmt: skip
        return cls(
            tag=tag,
            model_name=str(body["model_name"]),
            model_bytes=int(body.get("model_bytes") or 0),
            latencies_ms=np.asarray(body.get("latencies_ms") or [], dtype=np.float64),
            warmup=int(body.get("warmup") or 0),
            threads=body.get("threads"),
            outputs=arrays[0] if arrays else None,
            device=dict(body.get("device") or {}),
            emulated=bool(body.get("emulated", False)),
            complete=bool(body.get("complete", False)),
            error=body.get("error"),
            all_outputs=arrays,
            output_names=tuple(body.get("output_names") or ()),
            samples=int(body.get("samples") or (arrays[0].shape[0] if arrays else 0)),
            use_xnnpack=bool(body.get("use_xnnpack", True)),
            init_ms=body.get("init_ms"),
            source=str(body.get("source", "agent")),
            extra={k: v for k, v in body.items() if k not in known},
        )


def load_dir(results_dir: str | Path) -> dict[str, RunResults]:
    """Every ``*.results.json`` in a folder, keyed by tag."""
    folder = Path(results_dir)
    return {r.tag: r for r in (RunResults.load(p) for p in sorted(folder.glob(f"*{RESULTS_SUFFIX}")))}
