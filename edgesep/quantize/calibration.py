"""Calibration data: a tiny protocol, three built-in sources, and seeded, checked sampling.

A source is anything iterable that yields NCHW float32 samples (``(C, H, W)``,
``(1, C, H, W)`` or a batch ``(B, C, H, W)``), or dicts ``{input_name: array}``
for models with several inputs.  A user source takes a few lines::

    class MySource:
        def __iter__(self):
            for path in paths:
                yield my_preprocess(path)          # (C, H, W) float32

``draw`` validates every sample against the model's inputs (the first one before
anything else is loaded), samples ``count`` of them with a seed, and warns when
the source has fewer.  Light module: numpy (+ Pillow for images) only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgesep.data.arrays import read_npy, read_npz
from edgesep.data.digits import load_digits_split
from edgesep.errors import CalibrationError, EdgesepWarning, InputError
from edgesep.fileio import check_input
from edgesep.quantize.preprocessing import PreprocessingSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ARRAY_SUFFIXES = (".npy", ".npz")
BUILTIN_SOURCES = ("digits",)


@runtime_checkable
class CalibrationSource(Protocol):
    """Yields NCHW float32 samples (arrays, or dicts keyed by model input name)."""

    def __iter__(self) -> Iterator[Any]: ...


class CalibrationWarning(EdgesepWarning):
    """Calibration proceeds, but with less (or skipped) data."""


class _Unreadable(Exception):
    """One item of a source could not be read (it is skipped and counted)."""


@dataclass(frozen=True)
class InputSpec:
    """One model input as the calibration data must provide it: NCHW, batch 1."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class CalibrationData:
    """The drawn samples: one stacked float32 array (N, ...) per model input, in NCHW."""

    arrays: tuple[np.ndarray, ...]
    requested: int
    skipped: int
    description: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0]) if self.arrays else 0

    def take(self, start: int, stop: int) -> CalibrationData:
        return CalibrationData(
            arrays=tuple(a[start:stop] for a in self.arrays),
            requested=self.requested,
            skipped=self.skipped,
            description=self.description,
        )


class IndexedSource:
    """Base for sources with a known length: sampling loads only the items it draws."""

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> Any:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"source": type(self).__name__}

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            try:
                yield self.load(index)
            except _Unreadable:
                continue


class ArraySource(IndexedSource):
    """A ``.npy`` array (N, C, H, W), or a ``.npz`` with one such array per model input name."""

    def __init__(self, path: str | Path, *, key: str | None = None):
        self.path = Path(path)
        check_input(self.path, what="calibration array file")
        if self.path.suffix not in ARRAY_SUFFIXES:
            raise InputError(f"calibration arrays must be .npy or .npz, got {self.path.name}")
        self._arrays: dict[str, np.ndarray] | np.ndarray
        if self.path.suffix == ".npy":
            self._arrays = read_npy(self.path, what="calibration arrays")
        else:
            loaded = read_npz(self.path, what="calibration arrays")
            names = [key] if key is not None else list(loaded)
            missing = [n for n in names if n not in loaded]
            if missing:
                raise CalibrationError(f"{self.path.name} has no array {missing[0]!r}; it has {list(loaded)}")
            arrays = {n: loaded[n] for n in names}
            self._arrays = next(iter(arrays.values())) if len(arrays) == 1 else arrays
        lengths = {a.shape[0] if a.ndim else 0 for a in self._values()}
        if len(lengths) != 1:
            raise CalibrationError(f"arrays in {self.path.name} have different sample counts: {sorted(lengths)}")
        self._length = lengths.pop()

    def _values(self) -> list[np.ndarray]:
        return list(self._arrays.values()) if isinstance(self._arrays, dict) else [self._arrays]

    def __len__(self) -> int:
        return self._length

    def load(self, index: int) -> Any:
        if isinstance(self._arrays, dict):
            return {name: array[index : index + 1] for name, array in self._arrays.items()}
        return self._arrays[index : index + 1]

    def describe(self) -> dict[str, Any]:
        return {"source": str(self.path), "kind": "arrays", "count": len(self)}


class DigitsSource(IndexedSource):
    """The built-in digits set (edgesep.data.digits): NCHW float32 in [0, 1], with labels."""

    def __init__(self, *, split: str = "train", size: int = 16):
        if split not in ("train", "test"):
            raise InputError(f"digits split must be 'train' or 'test', got {split!r}")
        data = load_digits_split(size=size)
        self.split = split
        self.size = size
        self.images = data.x_train if split == "train" else data.x_test
        self.labels = data.y_train if split == "train" else data.y_test

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def load(self, index: int) -> np.ndarray:
        return self.images[index : index + 1]

    def describe(self) -> dict[str, Any]:
        return {"source": "digits", "kind": "builtin", "split": self.split, "size": self.size, "count": len(self)}


class ImageFolderSource(IndexedSource):
    """A folder (searched recursively) of .jpg/.png images, each turned into CHW by ``spec``.

    Unreadable files are skipped, counted in ``skipped`` and listed in ``unreadable``; ``attempted`` counts
    every file a load was tried on (see :func:`check_unreadable` for the threshold).
    """

    def __init__(self, folder: str | Path, spec: PreprocessingSpec):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"calibration folder not found: {self.folder}")
        self.spec = spec
        self.files = sorted(p for p in self.folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CalibrationError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {self.folder}")
        self.skipped = 0
        self.attempted = 0
        self.unreadable: list[Path] = []

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.files[index]
        self.attempted += 1
        try:
            with Image.open(path) as image:
                image.load()
                chw = self.spec.apply(image)
        except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as error:
            self.skipped += 1
            self.unreadable.append(path)
            raise _Unreadable(str(path)) from error
        return chw[None]

    def describe(self) -> dict[str, Any]:
        return {"source": str(self.folder), "kind": "images", "files": len(self.files), "skipped": self.skipped}


def open_source(
    path_or_name: str | Path | CalibrationSource,
    *,
    preprocessing: PreprocessingSpec | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> CalibrationSource:
    """``"digits"``, a folder of images, or a .npy/.npz file -> a source (a source passes through).

    A folder needs ``preprocessing``; without it, a plain spec is derived from the
    model's NCHW ``input_shape`` (stretch to H x W, GRAY or RGB, pixels / 255).
    """
    if not isinstance(path_or_name, (str, Path)):
        if isinstance(path_or_name, CalibrationSource):
            return path_or_name
        raise InputError(f"calibration must be a path, 'digits' or an iterable source, got {type(path_or_name).__name__}")
    if str(path_or_name) == "digits":
        size = int(input_shape[-1]) if input_shape is not None else 16
        return DigitsSource(size=size)
    path = Path(path_or_name)
    if path.is_dir():
        if preprocessing is None:
            if input_shape is None or len(input_shape) != 4:
                raise InputError("an image folder needs a preprocessing spec (the model input shape is unknown)")
            preprocessing = PreprocessingSpec.for_input(tuple(input_shape))
        return ImageFolderSource(path, preprocessing)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return ArraySource(path)
    if not path.exists():
        raise InputError(f"calibration data not found: {path} (give a folder of images, a .npy/.npz file or 'digits')")
    raise InputError(f"cannot calibrate from {path.name}: give a folder of images, a .npy/.npz file or 'digits'")


def describe(source: Any) -> dict[str, Any]:
    describer = getattr(source, "describe", None)
    return dict(describer()) if callable(describer) else {"source": type(source).__name__, "kind": "custom"}


def draw(
    source: Iterable[Any],
    inputs: Sequence[InputSpec],
    *,
    count: int,
    seed: int = 0,
    required: int | None = None,
) -> CalibrationData:
    """Up to ``count`` validated samples in a seeded random order; warns if fewer than ``required``."""
    required = count if required is None else required
    if isinstance(source, IndexedSource):
        samples = _draw_indexed(source, inputs, count=count, seed=seed)
    else:
        samples = _draw_streamed(source, inputs, count=count, seed=seed)
    skipped = int(getattr(source, "skipped", 0))
    unreadable = list(getattr(source, "unreadable", ()))
    if not samples:
        if skipped:
            raise CalibrationError(
                f"all {skipped} calibration files are unreadable ({describe(source).get('source')}): {_some(unreadable)}".rstrip(": ")
            )
        raise CalibrationError(f"the calibration source yielded no samples ({describe(source).get('source')})")
    if unreadable:
        check_unreadable(unreadable, int(getattr(source, "attempted", 0)) or len(unreadable), what="calibration")
    elif skipped:
        warnings.warn(f"skipped {skipped} unreadable calibration file(s)", CalibrationWarning, stacklevel=2)
    if len(samples) < required:
        warnings.warn(
            f"calibration source has only {len(samples)} sample(s), fewer than the {required} requested; using all",
            CalibrationWarning,
            stacklevel=2,
        )
    arrays = tuple(np.concatenate([s[i] for s in samples], axis=0) for i in range(len(inputs)))
    info = describe(source)
    info.update({"samples": len(samples), "requested": required, "seed": seed})
    return CalibrationData(arrays=arrays, requested=required, skipped=skipped, description=info)


MAX_UNREADABLE_FRACTION = 0.10
"""More undecodable images than this (of those tried) fail calibration/validation: the rest is not the data."""


def check_unreadable(unreadable: Sequence[Path], attempted: int, *, what: str) -> None:
    """Fail when more than MAX_UNREADABLE_FRACTION of the ``attempted`` image files did not decode (naming up
    to 3 and the count); below it, warn naming them. Nothing to say when all decoded."""
    if not unreadable:
        return
    text = f"{len(unreadable)} of {attempted} {what} images could not be decoded: {_some(unreadable)}"
    if len(unreadable) > MAX_UNREADABLE_FRACTION * attempted:
        raise CalibrationError(
            f"{text}; more than {MAX_UNREADABLE_FRACTION:.0%} fail, so the rest does not stand for the data (fix or remove them)"
        )
    warnings.warn(f"{text} (skipped; up to {MAX_UNREADABLE_FRACTION:.0%} may fail)", CalibrationWarning, stacklevel=3)


def _some(paths: Sequence[Path], *, limit: int = 3) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _draw_indexed(source: IndexedSource, inputs: Sequence[InputSpec], *, count: int, seed: int) -> list:
    if hasattr(source, "skipped"):
        source.skipped = 0
    if isinstance(source, ImageFolderSource):
        source.unreadable, source.attempted = [], 0
    order = np.random.default_rng(seed).permutation(len(source))
    samples: list = []
    for index in order:
        if len(samples) >= count:
            break
        try:
            item = source.load(int(index))
        except _Unreadable:
            continue
        samples.extend(split_sample(item, inputs))
    return samples[:count]


def _draw_streamed(source: Iterable[Any], inputs: Sequence[InputSpec], *, count: int, seed: int) -> list:
    """Reservoir sampling: a seeded uniform choice of ``count`` items from a stream of unknown length."""
    rng = np.random.default_rng(seed)
    reservoir: list = []
    seen = 0
    for item in source:
        for sample in split_sample(item, inputs):
            if len(reservoir) < count:
                reservoir.append(sample)
            else:
                slot = int(rng.integers(0, seen + 1))
                if slot < count:
                    reservoir[slot] = sample
            seen += 1
    return reservoir


def split_sample(item: Any, inputs: Sequence[InputSpec]) -> list[tuple[np.ndarray, ...]]:
    """One yielded item -> a list of per-sample tuples of (1, ...) float32 arrays, validated."""
    if isinstance(item, dict):
        names = [spec.name for spec in inputs]
        if len(inputs) == 1 and len(item) == 1:
            arrays = list(item.values())
        else:
            missing = [n for n in names if n not in item]
            if missing:
                raise CalibrationError(f"calibration sample lacks input {missing[0]!r}; the model inputs are {names}")
            arrays = [item[n] for n in names]
    elif isinstance(item, (tuple, list)) and len(inputs) > 1:
        arrays = list(item)
    else:
        arrays = [item]
    if len(arrays) != len(inputs):
        raise CalibrationError(f"calibration sample has {len(arrays)} arrays but the model has {len(inputs)} inputs")
    batched = [_check_array(np.asarray(a), spec) for a, spec in zip(arrays, inputs)]
    sizes = {b.shape[0] for b in batched}
    if len(sizes) != 1:
        raise CalibrationError(f"calibration sample arrays have different batch sizes: {sorted(sizes)}")
    return [tuple(b[i : i + 1] for b in batched) for i in range(sizes.pop())]


def _check_array(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Shape/dtype/channel check of one array against one model input; returns (B, ...) float32."""
    expected = tuple(spec.shape)
    if not np.issubdtype(array.dtype, np.floating):
        raise CalibrationError(
            f"calibration data for input {spec.name!r} must be float32 (NCHW {expected}), got dtype {array.dtype}; "
            "scale integer pixels first (e.g. with a preprocessing spec)"
        )
    if array.ndim == len(expected) - 1:
        array = array[None]
    if array.ndim != len(expected) or array.shape[1:] != expected[1:]:
        got = tuple(array.shape)
        hint = ""
        if array.ndim == 4 == len(expected) and array.shape[1] != expected[1]:
            if array.shape[1:] == (expected[2], expected[3], expected[1]):
                hint = "; it looks NHWC, calibration data is NCHW"
            else:
                hint = f"; {array.shape[1]} channels given, the model expects {expected[1]}"
        raise CalibrationError(f"calibration data for input {spec.name!r} has shape {got} but the model expects {expected} (NCHW){hint}")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"calibration data for input {spec.name!r} contains NaN or infinite values")
    return array
