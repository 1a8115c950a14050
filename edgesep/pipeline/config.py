"""The pipeline config (`edgesep run pipeline.toml`): typed, frozen, validated in full before any work.

Every section is a frozen dataclass that embeds or builds its step's own config (QuantRecipe,
PreprocessingSpec, RunSpec, PruneConfig, DistillConfig), so modes, types and value checks are
defined once, by the step.  An unknown key, a value of the wrong type or a value the step's config
refuses is a ConfigError naming the key (or section), the file and line.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesep.devices.base import RunSpec
from edgesep.distill.config import DistillConfig
from edgesep.errors import ConfigError, EdgesepError
from edgesep.numerics import DEFAULT_TOLERANCE
from edgesep.prune.config import PruneConfig
from edgesep.quantize.preprocessing import PreprocessingSpec
from edgesep.quantize.recipe import MODES, QuantRecipe

STEPS = ("prune", "distill", "export", "convert", "quantize", "validate")


@dataclass(frozen=True)
class ModelSection:
    factory: str | None = "default"
    """'file.py:factory', 'package.module:factory' or 'default' (the trained digits SepCNN)."""
    weights: str | None = None
    onnx: str | None = None
    """An existing ONNX file instead of a factory (export is skipped)."""
    input_shape: tuple[int, ...] | None = None
    opset: int = 17


@dataclass(frozen=True)
class ConvertSection:
    keep_nchw: bool = False
    tolerance: float = DEFAULT_TOLERANCE


@dataclass(frozen=True)
class CalibrationSection:
    source: str = "digits"
    """'digits', a folder of images, or a .npy/.npz file."""
    samples: int = 300
    seed: int = 0
    preprocessing: PreprocessingSpec | None = None
    """The quantize step's own spec (edgesep.quantize.preprocessing), every key of it."""

    def __post_init__(self) -> None:
        QuantRecipe(samples=self.samples, seed=self.seed, preprocessing=self.preprocessing)  # the recipe's own checks


@dataclass(frozen=True)
class QuantizeSection:
    """[quantize]: the QuantRecipe of each mode (with [calibration]'s samples, seed and preprocessing)."""

    modes: tuple[str, ...] = MODES
    input_type: str = "int8"
    output_type: str = "float32"
    per_channel: bool = True
    keep_float: tuple[str, ...] = ()
    auto_fallback: int = 0
    equalize: bool = False
    """int8: cross-layer equalization of the PyTorch model before export (needs model.factory)."""
    bias_correction: str = "none"
    """int8: 'none', 'empirical' (calibration data; on the int8 model when model.onnx is given) or 'analytic'
    (BN statistics; needs model.factory)."""
    activation_range: str = "minmax"
    """int8: 'minmax', 'percentile', 'mse' or 'entropy' activation ranges from the calibration data."""
    equalize_activations: bool = False
    """int8: balance the activation channels between conv pairs on the ONNX graph (any model; not with the
    PyTorch-side equalize/bias correction/QAT)."""
    qat_epochs: int = 0
    """int8: quantization-aware fine-tuning epochs of the PyTorch model before export (needs model.factory)."""
    float_ends: tuple[float, ...] = (0.0, 0.0)
    """int8: [head, tail] fractions of the ops kept float at the input and output ends (QuantRecipe.float_ends)."""

    def __post_init__(self) -> None:
        for mode in self.modes or MODES:  # QuantRecipe's own checks, one definition of modes and types
            self.recipe(mode, CalibrationSection())
        if self.auto_fallback < 0:
            raise ConfigError(f"auto_fallback must be >= 0, got {self.auto_fallback}")

    def recipe(self, mode: str, calibration: CalibrationSection) -> QuantRecipe:
        """The recipe of ``mode``: integer I/O, kept layers and the int8 remedies apply to int8 only."""
        int8 = mode == "int8"
        return QuantRecipe(
            mode=mode,
            input_type=self.input_type if int8 else "float32",
            output_type=self.output_type if int8 else "float32",
            per_channel=self.per_channel,
            samples=calibration.samples,
            seed=calibration.seed,
            keep_float=self.keep_float if int8 else (),
            preprocessing=calibration.preprocessing,
            equalize=self.equalize and int8,
            bias_correction=self.bias_correction if int8 else "none",
            activation_range=self.activation_range if int8 else "minmax",
            equalize_activations=self.equalize_activations and int8,
            qat_epochs=self.qat_epochs if int8 else 0,
            float_ends=typing.cast(tuple[float, float], self.float_ends) if int8 else (0.0, 0.0),
        )


@dataclass(frozen=True)
class ValidateSection:
    data: str = "digits"
    """'digits' (labels included), an .npz with x/y, or a folder of images (labels from subfolders)."""
    labels: str | None = None
    samples: int | None = None
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    fail_if_drop: float | None = None
    """Fail (exit 1) when int8 accuracy drops more than this many points below float."""

    def __post_init__(self) -> None:
        self.run_spec()  # RunSpec's own checks

    def run_spec(self) -> RunSpec:
        return RunSpec(runs=self.runs, warmup=self.warmup, threads=self.threads)


@dataclass(frozen=True)
class PruneSection:
    """``[prune]``: edgesep.prune.PruneConfig before export (one target: ratio, max_params or max_macs)."""

    ratio: float | None = None
    max_params: int | None = None
    max_macs: int | None = None
    criterion: str = "l1"
    round_to: int = 8
    finetune_epochs: int = 0
    data: str = "digits"
    """Fine-tuning data: 'digits' or a .npz with x_train, y_train, x_test, y_test (NCHW)."""
    seed: int = 0

    def __post_init__(self) -> None:
        shrink_config(self)  # PruneConfig's own checks


@dataclass(frozen=True)
class DistillSection:
    """``[distill]``: the (pruned) model learns from a teacher (edgesep.distill.DistillConfig) before export."""

    teacher: str = "default"
    """'default' (the standard-conv digits CNN, trained and cached) or 'file.py:factory' / 'pkg.mod:factory'."""
    teacher_weights: str | None = None
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 12
    lr: float = 0.01
    data: str = "digits"
    seed: int = 0

    def __post_init__(self) -> None:
        shrink_config(self)  # DistillConfig's own checks


@dataclass(frozen=True)
class PipelineConfig:
    output: str = "edgesep-out"
    model: ModelSection = field(default_factory=ModelSection)
    convert: ConvertSection = field(default_factory=ConvertSection)
    calibration: CalibrationSection = field(default_factory=CalibrationSection)
    quantize: QuantizeSection = field(default_factory=QuantizeSection)
    validate: ValidateSection = field(default_factory=ValidateSection)
    prune: PruneSection | None = None
    distill: DistillSection | None = None
    devices: tuple[str, ...] = ("local",)
    base_dir: str = "."
    """Folder that relative paths are resolved against (the config file's folder)."""

    @typing.overload
    def resolve(self, path: str) -> Path: ...

    @typing.overload
    def resolve(self, path: None) -> None: ...

    def resolve(self, path: str | None) -> Path | None:
        if path is None:
            return None
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_CONFIG = PipelineConfig()
"""The built-in default: the digits SepCNN (trained if absent), all modes, the local device."""


def load_config(path: str | Path) -> PipelineConfig:
    """Parse and validate a pipeline TOML file; ConfigError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pipeline config {path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    locator = _Locator(path, text)
    config = _build(PipelineConfig, raw, locator, prefix="")
    if "base_dir" not in raw:
        config = dataclasses.replace(config, base_dir=str(path.parent.resolve()))
    _check_semantics(config, locator)
    return config


def config_from_dict(raw: dict[str, Any], *, source: str = "<dict>") -> PipelineConfig:
    config = _build(PipelineConfig, raw, _Locator(Path(source), ""), prefix="")
    _check_semantics(config, _Locator(Path(source), ""))
    return config


class _Locator:
    """Finds the line of a key in the TOML text for error messages (best effort)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def where(self, dotted: str) -> str:
        section, _, key = dotted.rpartition(".")
        in_section = section == ""
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if stripped.startswith("["):
                header = stripped.strip("[]").strip()
                in_section = header == section
                if header == dotted:
                    return f"{self.path}:{number}"
                continue
            if in_section and re.match(rf"{re.escape(key)}\s*=", stripped):
                return f"{self.path}:{number}"
        return str(self.path)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    if tp is type(None):
        return "absent"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, locator: _Locator, dotted: str) -> Any:
    origin = typing.get_origin(tp)
    fail = ConfigError(f"{locator.where(dotted)}: {dotted} = {value!r} has the wrong type; expected {_describe(tp)}")
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            if option is type(None):
                continue
            if dataclasses.is_dataclass(option) and isinstance(value, dict):  # a table: its own errors, located
                return _convert(option, value, locator, dotted)
            try:
                return _convert(option, value, locator, dotted)
            except ConfigError:
                continue
        raise fail
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail
        return _build(typing.cast(type, tp), value, locator, prefix=f"{dotted}.")  # field types are classes
    if origin is tuple:
        if not isinstance(value, list):
            raise fail
        item_type = typing.get_args(tp)[0]
        return tuple(_convert(item_type, item, locator, dotted) for item in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise fail
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail
        return value
    raise fail


def _build(cls: type, raw: dict[str, Any], locator: _Locator, *, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{locator.where(prefix + key)}: unknown key {prefix + key!r}; expected one of: {', '.join(sorted(known))}")
    values = {key: _convert(hints[key], value, locator, prefix + key) for key, value in raw.items()}
    try:
        return cls(**values)
    except EdgesepError as error:  # the step config's own check (ConfigError, InputError): one error type, located
        section = prefix.rstrip(".")
        raise ConfigError(f"{locator.where(section)}: [{section}]: {error}") from None


def _check_semantics(config: PipelineConfig, locator: _Locator) -> None:
    def bad(dotted: str, message: str) -> ConfigError:
        return ConfigError(f"{locator.where(dotted)}: {dotted}: {message}")

    if not config.quantize.modes:
        raise bad("quantize.modes", f"name at least one mode of {', '.join(MODES)}")
    torch_side = {"quantize.equalize": config.quantize.equalize, "quantize.bias_correction": config.quantize.bias_correction == "analytic",
                  "quantize.qat_epochs": config.quantize.qat_epochs > 0}  # fmt: skip
    if any(torch_side.values()) and config.model.onnx is not None:
        raise bad(
            next(key for key, value in torch_side.items() if value),
            "equalization, analytic bias correction and QAT act on the PyTorch model: give model.factory, not model.onnx",
        )
    if config.model.onnx is None and config.model.factory is None:
        raise bad("model", "give either factory or onnx")
    if not config.devices:
        raise bad("devices", "name at least one device")
    if (config.prune or config.distill) and config.model.onnx is not None:
        raise bad("model.onnx", "[prune] and [distill] need a PyTorch model (model.factory), not an ONNX file")


def shrink_config(section: PruneSection | DistillSection):
    """The PruneConfig / DistillConfig a section maps to, from the section's keys it has (InputError on bad values)."""

    step_config: type = PruneConfig if isinstance(section, PruneSection) else DistillConfig
    names = {f.name for f in dataclasses.fields(step_config)}
    return step_config(**{key: value for key, value in dataclasses.asdict(section).items() if key in names})
