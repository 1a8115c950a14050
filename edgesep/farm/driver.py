"""Running a sweep's plan on Ray and collecting one table on the head.

Stages whose key matches ``<output>/state.json`` (and whose files still have their recorded digests) are not run:
their files are read back and handed to the stages that need them.  The others are submitted at once as a graph of
tasks: ``prepare`` and ``quantize`` are CPU tasks (retried elsewhere if their node dies: they can run anywhere),
each ``validate`` cell holds its device's custom resource ``device:<name>`` (so it runs on the node the device is
attached to, one cell at a time per device) with ``max_retries=0``: a lost node is reported, not retried on
another.  A cell whose node, worker or device is lost is recorded as ``lost`` with the reason; a cell whose task
raised is ``failed``; neither is cached, so the next run does exactly those.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesep.errors import EdgesepError
from edgesep.farm import tasks
from edgesep.farm.cluster import cluster_address, connect, offered_devices, ray_module
from edgesep.farm.config import SweepConfig, device_resource
from edgesep.farm.plan import PREPARE, QUANTIZE, VALIDATE, Cell, Plan, Stage, make_plan
from edgesep.farm.report import write_reports
from edgesep.fileio import write_bytes
from edgesep.pipeline.cache import StepCache
from edgesep.pipeline.config import PipelineConfig

CPU_TASK_RETRIES = 2
POLL_S = 1.0
STATUSES = ("ok", "cached", "lost", "failed")
RAY_MESSAGES = "ray-messages.log"


@dataclass(frozen=True)
class FarmOptions:
    address: str | None = None
    """``ray://host:10001``, ``auto`` or ``host:port``; None: RAY_ADDRESS, else embedded Ray on this machine."""
    force: bool = False
    """Run every stage even when its key matches the recorded one."""
    num_cpus: int | None = None
    """Embedded Ray only: CPUs to use (None: all)."""
    progress: bool = True


@dataclass(frozen=True)
class CellResult:
    model: str
    recipe: str
    device: str
    status: str  # ok | cached | lost | failed
    row: dict[str, Any] | None = None
    """The quantized variant's row (as ``edgesep run`` gives it): accuracy, agreement, cosine, p50, speed-up, size."""
    baseline: dict[str, Any] | None = None
    """The float32 row of the same device session."""
    reason: str | None = None
    node: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "recipe": self.recipe,
            "device": self.device,
            "status": self.status,
            "row": self.row,
            "baseline": self.baseline,
            "reason": self.reason,
            "node": self.node,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class FarmResult:
    output: Path
    cells: tuple[CellResult, ...]
    recipes: dict[str, str]
    """recipe name -> what it sets."""
    address: str | None
    nodes: int
    seconds: float

    @property
    def incomplete(self) -> tuple[CellResult, ...]:
        return tuple(cell for cell in self.cells if cell.status in ("lost", "failed"))

    def to_dict(self) -> dict[str, Any]:
        counts = {status: sum(1 for c in self.cells if c.status == status) for status in STATUSES}
        return {
            "output": str(self.output),
            "cluster": self.address or "embedded",
            "nodes": self.nodes,
            "seconds": self.seconds,
            "counts": counts,
            "recipes": self.recipes,
            "cells": [cell.to_dict() for cell in self.cells],
        }


def farm(sweep: SweepConfig, *, options: FarmOptions = FarmOptions()) -> FarmResult:
    """Run the sweep (only the stages whose inputs changed) and write ``<output>/sweep.json`` + ``report.md``."""

    started = time.perf_counter()
    plan = make_plan(sweep)
    sweep.output.mkdir(parents=True, exist_ok=True)
    cache = StepCache.open(sweep.output)
    fresh = set() if options.force else fresh_stages(plan, cache)
    results = {cell.stage.name: _cached(cell, cache) for cell in plan.cells if cell.stage.name in fresh}
    todo = [cell for cell in plan.cells if cell.stage.name not in fresh]
    address, nodes = None, 0
    if todo:
        address = cluster_address(options.address)
        with connect(address, devices=sweep.devices, num_cpus=options.num_cpus, messages=sweep.output / RAY_MESSAGES) as connection:
            nodes = connection.nodes
            results.update(_Run(plan, cache, fresh, options).cells(todo))
    result = FarmResult(
        output=sweep.output,
        cells=tuple(results[cell.stage.name] for cell in plan.cells),
        recipes={recipe.name: recipe.describe() for recipe in sweep.recipes},
        address=address,
        nodes=nodes,
        seconds=time.perf_counter() - started,
    )
    write_reports(result)
    return result


def fresh_stages(plan: Plan, cache: StepCache) -> set[str]:
    """The stages whose key matches the recorded one, whose files still have their recorded digests, and whose
    upstream stages are fresh too (a re-done quantize re-does its cells)."""
    fresh: set[str] = set()
    for name, stage in plan.stages.items():  # upstream first
        if (stage.upstream is None or stage.upstream in fresh) and _is_fresh(cache, stage):
            fresh.add(name)
    return fresh


def _is_fresh(cache: StepCache, stage: Stage) -> bool:
    entry = cache.entries.get(stage.name)
    if not entry:
        return False
    artifacts = [cache.folder / relative for relative in entry.get("artifacts", [])]
    return bool(artifacts) and cache.is_fresh(stage.name, stage.key, artifacts)


def _cached(cell: Cell, cache: StepCache) -> CellResult:
    result = cache.result(cell.stage.name)
    return CellResult(
        cell.model,
        cell.recipe,
        cell.device,
        "cached",
        row=result.get("row"),
        baseline=result.get("baseline"),
        node=result.get("node"),
        seconds=0.0,
    )


# -- the remote side: module-level so that workers import them by name --------------------------------------------
def prepare_task(pipeline: PipelineConfig) -> dict[str, Any]:
    return _with_node(tasks.prepare(pipeline))


def quantize_task(pipeline: PipelineConfig, prepared: dict[str, Any]) -> dict[str, Any]:
    return _with_node(tasks.quantize(pipeline, prepared["files"]))


def validate_task(pipeline: PipelineConfig, prepared: dict[str, Any], quantized: dict[str, Any]) -> dict[str, Any]:
    return _with_node(tasks.validate(pipeline, prepared["files"], quantized["files"]))


def _with_node(output: dict[str, Any]) -> dict[str, Any]:
    import ray

    return {**output, "node": ray.get_runtime_context().get_node_id()}


# -- the driver side ------------------------------------------------------------------------------------------------
@dataclass
class _Run:
    plan: Plan
    cache: StepCache
    fresh: set[str]
    options: FarmOptions
    refs: dict[str, Any] = field(default_factory=dict)  # stage name -> ObjectRef of its output
    pending: dict[Any, Stage] = field(default_factory=dict)  # ObjectRef -> the stage it computes
    remote: dict[str, Any] = field(default_factory=dict)  # stage kind -> its remote function

    def remote_function(self, ray, kind: str) -> Any:
        if not self.remote:
            self.remote = {PREPARE: ray.remote(prepare_task), QUANTIZE: ray.remote(quantize_task), VALIDATE: ray.remote(validate_task)}
        return self.remote[kind]

    def cells(self, todo: list[Cell]) -> dict[str, CellResult]:
        ray = ray_module()
        results: dict[str, CellResult] = {}
        by_stage = {cell.stage.name: cell for cell in todo}
        offered = offered_devices(sorted({cell.device for cell in todo}))
        for cell in todo:
            if cell.device not in offered:
                results[cell.stage.name] = _lost(cell, f"no node of the cluster offers {device_resource(cell.device)}")
                continue
            self.submit(cell.stage)
        with _progress(len(todo), enabled=self.options.progress) as advance:
            advance(len(results))
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    stage = self.pending.pop(ref)
                    finished = by_stage.get(stage.name)
                    outcome = self.collect(ray, ref, stage, finished)
                    if outcome is not None:
                        results[stage.name] = outcome
                        advance(1)
                if not ready:
                    for name in self.devices_gone(ray, by_stage):
                        results[name] = _lost(
                            by_stage[name],
                            f"{device_resource(by_stage[name].device)} left the cluster (its node died or was stopped)",
                        )
                        advance(1)
        return results

    def submit(self, stage: Stage) -> Any:
        """The ObjectRef of ``stage``'s output: its recorded files when fresh, else its task (submitted once)."""

        if stage.name in self.refs:
            return self.refs[stage.name]
        ray = ray_module()
        if stage.name in self.fresh:
            ref = ray.put({"files": self.recorded_files(stage)})
        else:
            if stage.kind == PREPARE:
                ref = self.remote_function(ray, PREPARE).options(num_cpus=1, max_retries=CPU_TASK_RETRIES).remote(stage.pipeline)
            elif stage.kind == QUANTIZE:
                assert stage.upstream is not None
                upstream = self.submit(self.plan.stages[stage.upstream])
                ref = self.remote_function(ray, QUANTIZE).options(num_cpus=1, max_retries=CPU_TASK_RETRIES).remote(stage.pipeline, upstream)
            else:
                assert stage.upstream is not None
                quantize = self.plan.stages[stage.upstream]
                assert quantize.upstream is not None
                prepared = self.submit(self.plan.stages[quantize.upstream])
                quantized = self.submit(quantize)
                device = stage.pipeline.devices[0]
                # the device is the scarce part: no CPU slot is held (a phone or a Pi does the work), one cell per
                # device at a time, and never retried on another node
                ref = (
                    self.remote_function(ray, stage.kind)
                    .options(num_cpus=0, resources={device_resource(device): 1}, max_retries=0)
                    .remote(stage.pipeline, prepared, quantized)
                )
            self.pending[ref] = stage
        self.refs[stage.name] = ref
        return ref

    def recorded_files(self, stage: Stage) -> dict[str, bytes]:
        entry = self.cache.result(stage.name)
        return {relative: (stage.folder / relative).read_bytes() for relative in entry.get("files", [])}

    def collect(self, ray, ref, stage: Stage, cell: Cell | None) -> CellResult | None:
        """Write a finished stage's files on the head and record it; a cell's result (None for other stages)."""
        try:
            output = ray.get(ref)
        except ray.exceptions.RayError as error:
            status, reason = classify(error)
            if cell is None:  # a prepare/quantize error reaches its cells through their own tasks
                return None
            return CellResult(cell.model, cell.recipe, cell.device, status, reason=reason)
        files = output["files"]
        paths = [write_bytes(stage.folder / relative, data, force=True) for relative, data in files.items()]
        rows = output.get("rows") or []
        row = rows[-1] if rows else None
        baseline = rows[0] if len(rows) > 1 else None
        record = {"files": sorted(files), "node": output.get("node"), "seconds": output.get("seconds")}
        if cell is not None:
            record.update(row=row, baseline=baseline)
        self.cache.record(stage.name, stage.key, paths, result=record)
        if cell is None:
            return None
        return CellResult(
            cell.model, cell.recipe, cell.device, "ok", row=row, baseline=baseline, node=output.get("node"), seconds=output.get("seconds")
        )

    def devices_gone(self, ray, by_stage: dict[str, Cell]) -> list[str]:
        """Pending cells whose device no live node offers any more: cancelled (they would wait forever)."""

        waiting = {ref: stage for ref, stage in self.pending.items() if stage.name in by_stage}
        if not waiting:
            return []
        offered = offered_devices(sorted({by_stage[stage.name].device for stage in waiting.values()}))
        gone = []
        for ref, stage in waiting.items():
            if by_stage[stage.name].device not in offered:
                try:
                    ray.cancel(ref, force=False)
                except Exception:  # noqa: BLE001 - best effort: the cell is reported lost either way
                    pass
                del self.pending[ref]
                gone.append(stage.name)
        return gone


def classify(error: BaseException) -> tuple[str, str]:
    """("lost" | "failed", one-line reason) for an error ray.get raised."""
    import ray.exceptions as rex

    lost_types = (
        rex.NodeDiedError,
        rex.WorkerCrashedError,
        rex.ObjectLostError,
        rex.OwnerDiedError,
        rex.TaskCancelledError,
        rex.RaySystemError,
        rex.LocalRayletDiedError,
        rex.OutOfMemoryError,
    )
    if isinstance(error, rex.RayTaskError) and not isinstance(error, lost_types):
        cause = getattr(error, "cause", None)
        if isinstance(cause, lost_types) or getattr(cause, "device_lost", False):  # tasks.StageError of a lost device
            return "lost", _first_line(cause)
        if cause is not None:
            text = str(cause) if isinstance(cause, EdgesepError) else f"{type(cause).__name__}: {cause}"
            return "failed", _first_line(text)
        return "failed", _first_line(error)
    return "lost", f"{type(error).__name__}: {_first_line(error)}"


def _first_line(value: object) -> str:
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(value).__name__


def _lost(cell: Cell, reason: str) -> CellResult:
    return CellResult(cell.model, cell.recipe, cell.device, "lost", reason=reason)


class _progress:
    """A rich progress bar over the cells on stderr (a no-op when disabled)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("farm"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True
            )
            self.bar.start()
            self.task = self.bar.add_task("cells", total=self.total)
        return self.advance

    def advance(self, count: int) -> None:
        if self.bar is not None and count:
            self.bar.advance(self.task, count)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
