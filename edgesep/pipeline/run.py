"""``edgesep run``: export -> convert -> quantize (each mode) -> validate (each device), cached by content hash."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesep import __version__
from edgesep.convert import convert
from edgesep.devices import open_device
from edgesep.errors import ConfigError, EdgesepError
from edgesep.export import export
from edgesep.fileio import output_error, remove_stale_temps, write_json
from edgesep.models.default import default_checkpoint_path, load_default_model
from edgesep.pipeline.adapters import calibration_inputs, run_quantize, run_validate
from edgesep.pipeline.cache import StepCache, data_files, step_key
from edgesep.pipeline.config import DEFAULT_CONFIG, STEPS, PipelineConfig, load_config
from edgesep.pipeline.shrink import run_distill, run_prune, shrink_inputs
from edgesep.prune.checkpoint import load_pruned
from edgesep.validate import check_drop
from edgesep.validate.report import write_summary_report
from edgesep.validate.table import device_slug

DEFAULT_FACTORY = "edgesep.models.default:load_default_model"


@dataclass(frozen=True)
class RunOptions:
    from_step: str | None = None
    only_step: str | None = None
    until_step: str | None = None
    """Stop after this step (e.g. "convert": the float model without quantizing or validating)."""
    force: bool = False
    """Re-run every selected step even when its cache key matches."""
    progress: bool = True


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: str  # "ran" | "skipped" | "not selected"
    seconds: float
    artifacts: tuple[str, ...]


@dataclass(frozen=True)
class PipelineResult:
    output: Path
    steps: tuple[StepOutcome, ...]
    rows: tuple[dict[str, Any], ...]
    """One row per (device, model variant): size, accuracy, agreement, latency, speed-up."""
    summary_path: Path
    report_path: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "rows": list(self.rows),
            "summary": str(self.summary_path),
            "report": str(self.report_path) if self.report_path else None,
        }


class StepFailed(EdgesepError):
    """A pipeline step failed; earlier artifacts stay in place."""

    def __init__(self, step: str, error: EdgesepError) -> None:
        self.exit_code = error.exit_code
        self.device_lost = bool(getattr(error, "device_lost", False))  # DeviceLostError: the run, not the model
        super().__init__(f"step '{step}' failed (earlier artifacts kept): {error}")


def run(config: PipelineConfig | str | Path | None = None, *, options: RunOptions = RunOptions()) -> PipelineResult:
    """Run the pipeline described by ``config`` (a PipelineConfig or a TOML path; None = built-in default)."""
    if config is None:
        config = DEFAULT_CONFIG
    elif not isinstance(config, PipelineConfig):
        config = load_config(config)
    for name, value in (("--from", options.from_step), ("--only", options.only_step), ("--until", options.until_step)):
        if value is not None and value not in STEPS:
            raise ConfigError(f"{name} {value!r} is not a step; expected one of {', '.join(STEPS)}")
    preflight(config)
    output = config.resolve(config.output)
    _say_if_outside(output, config)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(output, error) from None
    remove_stale_temps(output)  # left by a run that was killed (SIGKILL, power loss) while writing
    cache = StepCache.open(output)
    pipeline = _Pipeline(config, output, cache, options)
    return pipeline.run()


def preflight(config: PipelineConfig) -> None:
    """Check everything the pipeline names (devices, data files) before the first step runs, so that a typo
    in the last section does not cost an export, a conversion and a quantization first."""
    for device in config.devices:
        try:
            open_device(device)
        except EdgesepError as error:
            raise ConfigError(f"devices: {error}") from None
    named = [("validate.data", config.validate.data), ("validate.labels", config.validate.labels)]
    if any(mode == "int8" for mode in config.quantize.modes):
        named.append(("calibration.source", config.calibration.source))
    for key, value in named:
        if value is None or value == "digits":
            continue
        path = config.resolve(value)
        if not path.exists():
            raise ConfigError(f"{key}: {path} not found")


class _Pipeline:
    def __init__(self, config: PipelineConfig, output: Path, cache: StepCache, options: RunOptions) -> None:
        self.config = config
        self.output = output
        self.cache = cache
        self.options = options
        self.outcomes: list[StepOutcome] = []

    # -- step selection -------------------------------------------------------------------------
    def selected(self, step: str) -> bool:
        if self.options.only_step is not None:
            return step == self.options.only_step
        if self.options.from_step is not None:
            return STEPS.index(step) >= STEPS.index(self.options.from_step)
        return True

    def stops_before(self, step: str) -> bool:
        """--until (or --only) names an earlier step: ``step`` and the ones after it are not run (nor required)."""
        last = self.options.until_step
        if self.options.only_step is not None:
            only = STEPS.index(self.options.only_step)
            last = STEPS[only if last is None else min(only, STEPS.index(last))]
        return last is not None and STEPS.index(step) > STEPS.index(last)

    def _step(
        self, name: str, kind: str, settings: Any, inputs: list[Path], artifacts: list[Path], action: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        key = step_key({"edgesep": __version__, "settings": settings}, inputs)  # a new edgesep re-runs steps
        fresh = self.cache.is_fresh(name, key, artifacts)
        if not self.selected(kind) or (fresh and not self.options.force):
            if not all(p.exists() for p in artifacts):
                raise ConfigError(
                    f"step '{name}' was not selected but its outputs are missing: "
                    f"{', '.join(str(p) for p in artifacts if not p.exists())}; run it first"
                )
            status = "not selected" if not self.selected(kind) else "skipped"
            self.outcomes.append(StepOutcome(name, status, 0.0, tuple(str(p) for p in artifacts)))
            return self.cache.result(name)
        _say(f"[{name}] running", self.options)
        started = time.perf_counter()
        try:
            result = action()
        except EdgesepError as error:
            raise StepFailed(name, error) from error
        self.cache.record(name, key, artifacts, result=result)
        seconds = time.perf_counter() - started
        self.outcomes.append(StepOutcome(name, "ran", seconds, tuple(str(p) for p in artifacts)))
        _say(f"[{name}] done in {seconds:.1f} s", self.options)
        return result

    # -- the steps ------------------------------------------------------------------------------
    def run(self) -> PipelineResult:
        shrunk = self.shrink()
        if self.stops_before("export"):
            return self.finish([])
        onnx_path = self.export(shrunk)
        if self.stops_before("convert"):
            return self.finish([])
        float_path = self.convert(onnx_path)
        if self.stops_before("quantize"):
            return self.finish([])
        quantized = {mode: self.quantize(onnx_path, mode, shrunk=shrunk) for mode in self.config.quantize.modes}
        if self.stops_before("validate"):
            return self.finish([])
        rows = []
        for device in self.config.devices:
            rows.extend(self.validate(device, float_path, quantized))
        return self.finish(rows)

    def model_source(self) -> tuple[str, list[Path]]:
        """The resolved factory reference of [model] and the files its module depends on."""
        model = self.config.model
        factory = DEFAULT_FACTORY if model.factory == "default" else model.factory
        assert factory is not None, "load_config requires model.factory without model.onnx"
        factory_file = factory.rpartition(":")[0]
        inputs = [self.config.resolve(model.weights)] if model.weights else []
        if factory_file.endswith(".py"):
            factory = f"{self.config.resolve(factory_file)}:{factory.rpartition(':')[2]}"
            inputs.append(Path(factory.rpartition(":")[0]))
        if factory == DEFAULT_FACTORY:
            inputs.append(_default_checkpoint())
        return factory, inputs

    def torch_model(self, shrunk: Path | None) -> Any:
        """The PyTorch model behind model.onnx (for equalization / bias correction / QAT); None for an ONNX input."""
        section = self.config.quantize
        if self.config.model.onnx is not None or not (section.equalize or section.bias_correction != "none" or section.qat_epochs):
            return None
        if shrunk is not None:
            return load_pruned(shrunk)
        return self.model_source()[0]

    def shrink(self) -> Path | None:
        """Optional [prune] then [distill]; the checkpoint export should use (None: the [model] itself)."""
        checkpoint = None
        for name, section, action in (("prune", self.config.prune, run_prune), ("distill", self.config.distill, run_distill)):
            if section is None:
                continue
            target = self.output / f"model_{'pruned' if name == 'prune' else 'distilled'}.pt"
            factory, inputs = self.model_source()
            settings = {name: dataclasses.asdict(section), "model": dataclasses.asdict(self.config.model), "factory": factory}
            inputs = [checkpoint] if checkpoint is not None else inputs
            inputs = inputs + shrink_inputs(self.config, section)
            source = checkpoint if checkpoint is not None else factory
            self._step(
                name,
                name,
                settings,
                inputs,
                [target],
                functools.partial(action, self.config, source, target, progress=self.options.progress),
            )
            checkpoint = target
        return checkpoint

    def export(self, shrunk: Path | None = None) -> Path:
        model = self.config.model
        if model.onnx is not None:
            path = self.config.resolve(model.onnx)
            if not path.is_file():
                raise ConfigError(f"model.onnx: {path} not found")
            return path
        target = self.output / "model.onnx"
        factory, inputs = self.model_source()
        if shrunk is not None:
            inputs = [shrunk]  # the pruned/distilled checkpoint's hash: editing [prune] re-exports
        settings = {"model": dataclasses.asdict(model), "factory": factory}
        if shrunk is not None:
            settings["shrunk"] = shrunk.name

        def action() -> dict[str, Any]:
            if shrunk is not None:
                result = export(load_pruned(shrunk), target, input_shape=model.input_shape, opset=model.opset, force=True)
            else:
                result = export(
                    factory,
                    target,
                    input_shape=model.input_shape,
                    weights=self.config.resolve(model.weights),
                    opset=model.opset,
                    force=True,
                )
            return {"max_abs": result.fidelity.max_abs, "cosine": result.fidelity.cosine}

        self._step("export", "export", settings, inputs, [target], action)
        return target

    def convert(self, onnx_path: Path) -> Path:
        target = self.output / "model_float32.tflite"
        settings = dataclasses.asdict(self.config.convert)

        def action() -> dict[str, Any]:
            result = convert(
                onnx_path, target, keep_nchw=self.config.convert.keep_nchw, tolerance=self.config.convert.tolerance, force=True
            )
            fidelity = getattr(result, "fidelity", None)
            return {"max_abs": getattr(fidelity, "max_abs", None), "cosine": getattr(fidelity, "cosine", None)}

        self._step("convert", "convert", settings, [onnx_path], [target], action)
        return target

    def quantize(self, onnx_path: Path, mode: str, *, shrunk: Path | None = None) -> Path:
        target = self.output / f"model_{mode}.tflite"
        settings = {
            "mode": mode,
            "quantize": dataclasses.asdict(self.config.quantize),
            "calibration": dataclasses.asdict(self.config.calibration),
            "convert": dataclasses.asdict(self.config.convert),
        }
        inputs = [onnx_path, *calibration_inputs(self.config)]

        def action() -> dict[str, Any]:
            return run_quantize(
                self.config, onnx_path, target, mode=mode, torch_model=self.torch_model(shrunk), progress=self.options.progress
            )

        self._step(f"quantize-{mode}", "quantize", settings, inputs, [target], action)
        return target

    def validate(self, device: str, float_path: Path, quantized: dict[str, Path]) -> list[dict[str, Any]]:
        folder = self.output / "validate" / device_slug(device)
        summary = folder / "rows.json"
        settings = {"device": device, "validate": dataclasses.asdict(self.config.validate)}
        inputs = [float_path, *quantized.values()]
        for named in (self.config.validate.data, self.config.validate.labels):  # edited data re-runs validate
            if named is not None and named != "digits":
                inputs += data_files(self.config.resolve(named))

        def action() -> dict[str, Any]:
            rows = run_validate(self.config, device, float_path, quantized, folder=folder)
            write_json(summary, rows, force=True)
            return {"rows": rows}

        result = self._step(f"validate-{device_slug(device)}", "validate", settings, inputs, [summary], action)
        return list(result.get("rows", []))

    def finish(self, rows: list[dict[str, Any]]) -> PipelineResult:
        summary_path = self.output / "summary.json"
        report_path = write_summary_report(rows, self.output, force=True) if rows else None
        result = PipelineResult(
            output=self.output,
            steps=tuple(self.outcomes),
            rows=tuple(rows),
            summary_path=summary_path,
            report_path=report_path,
        )
        write_json(summary_path, {"config": self.config.to_dict(), **result.to_dict()}, force=True)
        gate = self.config.validate.fail_if_drop
        if gate is not None:
            for row in rows:
                drop = row.get("accuracy_drop_pp")
                if drop is not None:
                    check_drop(
                        drop,
                        gate,
                        baseline_pct=row["accuracy"] + drop,
                        candidate_pct=row["accuracy"],
                        subject=f"{row['variant']} on {row['device']}:",
                        where=f"; results kept in {self.output}",
                    )
        return result


def _default_checkpoint() -> Path:
    """The trained digits SepCNN's checkpoint (trained now if absent), so retraining re-runs export."""

    path = default_checkpoint_path()
    if not path.is_file():
        load_default_model()
    return path


def _say_if_outside(output: Path, config: PipelineConfig) -> None:
    """A relative ``output`` that leaves the config's folder (``../..``, a symlink) is allowed, but said once,
    with its resolved path, so that a config never writes somewhere unexpected without a word. An absolute
    ``output`` (written as such in the file, ``-o``, a farm worker's folder) says where it goes already."""
    import sys

    if config.base_dir == "." or Path(config.output).is_absolute():  # built-in default: no config folder
        return
    base = Path(config.base_dir).resolve()
    resolved = output.resolve()
    if not resolved.is_relative_to(base):
        print(f"edgesep: output folder {resolved} is outside the config's folder {base}", file=sys.stderr)


def _say(message: str, options: RunOptions) -> None:
    if options.progress:
        import sys

        print(message, file=sys.stderr)
