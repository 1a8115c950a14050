"""Latency-only benchmark of any .tflite models (also third-party ones) on a device."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesep.devices.base import RunSpec
from edgesep.devices.registry import named_device
from edgesep.errors import InputError
from edgesep.fileio import check_input
from edgesep.results import results_paths
from edgesep.validate.comparison import ModelSummary, summarize
from edgesep.validate.metrics import speedup


@dataclass(frozen=True)
class BenchEntry:
    path: Path
    summary: ModelSummary
    runtime: str  # "name version" from the device facts

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "runtime": self.runtime, **self.summary.to_dict()}


@dataclass(frozen=True)
class BenchReport:
    device: str
    device_facts: dict
    entries: tuple[BenchEntry, ...]
    results_files: tuple[Path, ...] = ()

    @property
    def emulated(self) -> bool:
        return any(entry.summary.emulated for entry in self.entries)

    def to_dict(self) -> dict[str, Any]:
        first = self.entries[0].summary.latency if self.entries else None
        models = [{**entry.to_dict(), "speedup_vs_first": speedup(first, entry.summary.latency)} for entry in self.entries]
        return {
            "device": self.device,
            "device_facts": self.device_facts,
            "emulated": self.emulated,
            "models": models,
            "results_files": [str(p) for p in self.results_files],
        }


def model_tags(paths: Sequence[Path]) -> list[str]:
    """One results tag per model: the file stem made tag-safe, de-duplicated with -2, -3, ..."""
    tags: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem).lstrip(".-") or "model"
        tag, n = base, 2
        while tag in tags:
            tag, n = f"{base}-{n}", n + 1
        tags.append(tag)
    return tags


def _runtime(device: dict) -> str:
    runtime = device.get("runtime") or {}
    if isinstance(runtime, dict):
        return f"{runtime.get('name', '?')} {runtime.get('version', '?')}"
    return str(runtime)


def benchmark(
    models: Sequence[str | Path],
    *,
    device="local",
    spec=None,
    output_dir: str | Path | None = None,
    force: bool = False,
    on_model: Callable[[str], None] | None = None,
) -> BenchReport:
    """Time each model on ``device`` with seeded random inputs of its own shape (one device run per model)."""
    if not models:
        raise InputError("give at least one .tflite model to benchmark")
    paths = [Path(m) for m in models]
    for path in paths:
        check_input(path, what="model")
    spec = spec or RunSpec()
    device_name, dev = named_device(device)
    entries: list[BenchEntry] = []
    files: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="edgesep-bench-") as scratch:
        results_dir = Path(output_dir) if output_dir is not None else Path(scratch)
        for tag, path in zip(model_tags(paths), paths):
            if on_model is not None:
                on_model(path.name)
            run = dev.run({tag: path}, None, results_dir, spec=spec, force=force)[tag]
            entries.append(BenchEntry(path=path, summary=summarize(run), runtime=_runtime(run.device)))
            if output_dir is not None:
                files.extend(p for p in results_paths(results_dir, tag) if p.exists())
            facts = dict(run.device)
    return BenchReport(device=device_name, device_facts=facts, entries=tuple(entries), results_files=tuple(files))
