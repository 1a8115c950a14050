"""The sweep config (``edgesep farm sweep.toml``): models x recipes x devices, validated in full before any work.

Each model is an ``edgesep run`` pipeline (a config file, or inline [model] keys); each recipe sets keys of the
pipeline's [quantize] section (one ``mode`` instead of ``modes``); each device is a device name or profile.
Sweep-level [calibration], [convert] and [validate] tables override those keys in every model's pipeline.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesep.devices.registry import parse_device
from edgesep.errors import ConfigError, EdgesepError
from edgesep.pipeline.config import PipelineConfig, config_from_dict, load_config

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
TOP_KEYS = ("output", "devices", "models", "recipes", "calibration", "convert", "validate")
MODEL_KEYS = ("name", "config", "factory", "weights", "onnx", "input_shape", "opset")
OVERRIDABLE = ("calibration", "convert", "validate")


@dataclass(frozen=True)
class SweepModel:
    name: str
    pipeline: PipelineConfig
    """The model's pipeline with the sweep's overrides; quantize and devices are set per cell."""


@dataclass(frozen=True)
class SweepRecipe:
    name: str
    mode: str
    settings: tuple[tuple[str, Any], ...] = ()
    """[quantize] keys this recipe sets (besides the mode), as typed by the pipeline config."""

    def apply(self, pipeline: PipelineConfig) -> PipelineConfig:
        """The pipeline quantizing with this recipe only."""
        quantize = dataclasses.replace(pipeline.quantize, modes=(self.mode,), **dict(self.settings))
        return dataclasses.replace(pipeline, quantize=quantize)

    def describe(self) -> str:
        return ", ".join([self.mode, *(f"{key}={value}" for key, value in self.settings)])


@dataclass(frozen=True)
class SweepConfig:
    output: Path
    models: tuple[SweepModel, ...]
    recipes: tuple[SweepRecipe, ...]
    devices: tuple[str, ...]
    source: str = "<dict>"

    @property
    def cells(self) -> int:
        return len(self.models) * len(self.recipes) * len(self.devices)


def load_sweep(path: str | Path) -> SweepConfig:
    """Parse and validate a sweep TOML; ConfigError naming the file and the key on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep config {path} not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    return sweep_from_dict(raw, base_dir=path.parent.resolve(), source=str(path))


def sweep_from_dict(raw: dict[str, Any], *, base_dir: Path, source: str = "<dict>") -> SweepConfig:
    def bad(message: str) -> ConfigError:
        return ConfigError(f"{source}: {message}")

    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; expected some of: {', '.join(TOP_KEYS)}")
    overrides = _overrides(raw, bad)
    models = tuple(
        _model(entry, index, base_dir=base_dir, overrides=overrides, bad=bad) for index, entry in enumerate(_tables(raw, "models", bad))
    )
    recipes = tuple(_recipe(entry, index, bad=bad) for index, entry in enumerate(_tables(raw, "recipes", bad)))
    devices = raw.get("devices")
    if not isinstance(devices, list) or not devices or not all(isinstance(d, str) and d.strip() for d in devices):
        raise bad('devices: give a list of device names, e.g. devices = ["local", "pi-emulated-local"]')
    _unique("models", [m.name for m in models], bad)
    _unique("recipes", [r.name for r in recipes], bad)
    _unique("devices", devices, bad)
    for model in models:
        for recipe in recipes:
            torch_only = [
                key for key, value in recipe.settings if (key == "equalize" and value) or (key == "bias_correction" and value == "analytic")
            ]
            if torch_only and model.pipeline.model.onnx is not None:
                raise bad(
                    f"recipes: {recipe.name} sets {torch_only[0]}, which acts on the PyTorch model; "
                    f"model {model.name} is an ONNX file (give it a factory)"
                )

    for device in devices:
        try:
            parse_device(device)
        except EdgesepError as error:
            raise bad(f"devices: {error}") from None
    output = raw.get("output", "edgesep-farm")
    if not isinstance(output, str) or not output:
        raise bad("output: give a folder name")
    folder = Path(output).expanduser()
    return SweepConfig(
        output=folder if folder.is_absolute() else base_dir / folder, models=models, recipes=recipes, devices=tuple(devices), source=source
    )


def device_resource(device: str) -> str:
    """The Ray custom resource a node offers for ``device``: ``device:<name>``."""
    return f"device:{device}"


def _tables(raw: dict[str, Any], key: str, bad) -> list[dict[str, Any]]:
    entries = raw.get(key)
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise bad(f"{key}: give at least one [[{key}]] table")
    return entries


def _unique(what: str, names: list[str], bad) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise bad(f"{what}: {name!r} appears twice")
        seen.add(name)


def _overrides(raw: dict[str, Any], bad) -> dict[str, dict[str, Any]]:
    """The sweep-level [calibration]/[convert]/[validate] keys, type-checked by the pipeline config."""
    given = {key: raw[key] for key in OVERRIDABLE if key in raw}
    for key, value in given.items():
        if not isinstance(value, dict):
            raise bad(f"[{key}] must be a table")
    try:
        parsed = config_from_dict(given, source="sweep")
    except ConfigError as error:
        raise bad(str(error).removeprefix("sweep: ")) from None
    return {key: {name: getattr(getattr(parsed, key), name) for name in value} for key, value in given.items()}


def _model(entry: dict[str, Any], index: int, *, base_dir: Path, overrides: dict[str, dict[str, Any]], bad) -> SweepModel:
    where = f"models[{index}]"
    unknown = sorted(set(entry) - set(MODEL_KEYS))
    if unknown:
        raise bad(f"{where}: unknown key {unknown[0]!r}; expected some of: {', '.join(MODEL_KEYS)}")
    name = _name(entry, where, bad)
    inline = {key: value for key, value in entry.items() if key not in ("name", "config")}
    if "config" in entry:
        if inline:
            raise bad(f"{where} ({name}): give either config or inline model keys ({', '.join(sorted(inline))}), not both")
        config_path = Path(str(entry["config"])).expanduser()
        pipeline = load_config(config_path if config_path.is_absolute() else base_dir / config_path)
    else:
        try:
            pipeline = config_from_dict({"model": inline, "base_dir": str(base_dir)}, source=where)
        except ConfigError as error:
            raise bad(f"{where} ({name}): {str(error).removeprefix(where + ': ')}") from None
        if "onnx" in inline and "factory" not in inline:  # TOML has no null: an ONNX file replaces the factory
            pipeline = dataclasses.replace(pipeline, model=dataclasses.replace(pipeline.model, factory=None))
    for key, values in overrides.items():
        section = dataclasses.replace(getattr(pipeline, key), **values)
        pipeline = dataclasses.replace(pipeline, **{key: section})
    validate = dataclasses.replace(pipeline.validate, fail_if_drop=None)  # the table shows drops; no cell fails on one
    return SweepModel(name=name, pipeline=dataclasses.replace(pipeline, validate=validate))


def _recipe(entry: dict[str, Any], index: int, *, bad) -> SweepRecipe:
    where = f"recipes[{index}]"
    name = _name(entry, where, bad)
    mode = entry.get("mode")
    if not isinstance(mode, str):
        raise bad(f'{where} ({name}): give mode = "int8", "float16" or "dynamic"')
    settings = {key: value for key, value in entry.items() if key not in ("name", "mode")}
    if "modes" in settings:
        raise bad(f"{where} ({name}): a recipe has one mode (mode = ...), not modes")
    try:
        quantize = config_from_dict({"quantize": {**settings, "modes": [mode]}}, source=where).quantize
    except ConfigError as error:
        raise bad(f"{where} ({name}): {str(error).removeprefix(where + ': ')}") from None
    return SweepRecipe(name=name, mode=mode, settings=tuple((key, getattr(quantize, key)) for key in sorted(settings)))


def _name(entry: dict[str, Any], where: str, bad) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise bad(f"{where}: name = {name!r}: give a name of letters, digits and . _ - (it names the output folder)")
    return name
