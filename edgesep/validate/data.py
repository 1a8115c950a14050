"""Validation data: load a labelled batch and put it in the model's input layout.

Sources: ``"digits"`` (the built-in test split, labels included), a ``.npz``
with ``x`` (and optionally ``y``) arrays, a ``.npy`` of inputs (labels from
``labels=``), or an image folder whose subfolder names are the classes (read
through ``edgesep.quantize.calibration`` with the preprocessing saved in the
quantized model's sidecar).  Arrays are NCHW float32 like every edgesep
dataset; they are transposed to the model's layout (NHWC for ``edgesep
convert`` output) from the sidecar, or from the model itself when there is no
sidecar (4-D with last dim 1 or 3 = NHWC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.data.arrays import read_npy, read_npz
from edgesep.data.digits import DIGITS_SIZE, load_digits_split
from edgesep.errors import InputError, ShapeError
from edgesep.fileio import check_input
from edgesep.quantize.calibration import ImageFolderSource, check_unreadable
from edgesep.quantize.preprocessing import PreprocessingSpec
from edgesep.runners.interpreter import open_interpreter
from edgesep.sidecar import read_sidecar

DIGITS = "digits"


@dataclass(frozen=True)
class ModelInput:
    """What a model's (first) input looks like: shape incl. batch, layout, dtype."""

    shape: tuple[int, ...]
    layout: str  # "NHWC", "NCHW" or "" (not an image)
    dtype: str = "float32"

    @property
    def spatial(self) -> tuple[int, int] | None:
        """``(height, width)`` for image inputs."""
        if len(self.shape) != 4:
            return None
        return (self.shape[1], self.shape[2]) if self.layout == "NHWC" else (self.shape[2], self.shape[3])

    @property
    def channels(self) -> int | None:
        if len(self.shape) != 4:
            return None
        return self.shape[3] if self.layout == "NHWC" else self.shape[1]


@dataclass(frozen=True)
class ValidationData:
    """A batch in the model's input layout, with labels when known."""

    x: np.ndarray  # (N, ...) float32 in the model's layout
    labels: np.ndarray | None  # (N,) int64
    source: str
    layout: str

    @property
    def samples(self) -> int:
        return int(self.x.shape[0])


def guess_layout(shape: tuple[int, ...]) -> str:
    """The no-sidecar rule: 4-D with last dim 1 or 3 is NHWC, other 4-D is NCHW."""
    if len(shape) != 4:
        return ""
    return "NHWC" if shape[-1] in (1, 3) else "NCHW"


NUMERIC_DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64")


def model_input(model_path: str | Path) -> ModelInput:
    """Input shape and layout from the sidecar, else from the .tflite itself."""
    sidecar = read_sidecar(model_path)
    if sidecar is not None and sidecar.inputs and sidecar.inputs[0].shape and sidecar.inputs[0].dtype in NUMERIC_DTYPES:
        first = sidecar.inputs[0]
        return ModelInput(shape=first.shape, layout=first.layout or guess_layout(first.shape), dtype=first.dtype)
    return _model_input_from_tflite(Path(model_path))


def _model_input_from_tflite(path: Path) -> ModelInput:
    check_input(path, what="model")
    try:
        detail = open_interpreter(path, allocate=False).get_input_details()[0]
    except (ValueError, RuntimeError) as error:
        raise InputError(f"cannot read {path} as a TFLite model: {error}") from None
    shape = tuple(int(d) for d in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    if dtype.kind not in "iuf":  # string (object/bytes), bool, complex: nothing to compare by cosine
        raise InputError(
            f"input {detail['name']!r} of {path} has dtype {_dtype_name(dtype)}; edgesep validates models with "
            "numeric (float or integer) inputs only"
        )
    return ModelInput(shape=shape, layout=guess_layout(shape), dtype=dtype.name)


def _dtype_name(dtype: np.dtype) -> str:
    return "string" if dtype.kind in "OSU" else dtype.name


def to_model_layout(x: np.ndarray, target: ModelInput) -> np.ndarray:
    """Accept data already in the model's layout, or NCHW data for an NHWC model; else ShapeError."""
    x = np.asarray(x, dtype=np.float32)
    want = tuple(target.shape[1:])
    if tuple(x.shape[1:]) == want:
        return np.ascontiguousarray(x)
    if x.ndim == 4 and target.layout == "NHWC" and tuple(x.transpose(0, 2, 3, 1).shape[1:]) == want:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if x.ndim == 3 and len(want) == 4:  # (N, H, W) grey images
        return to_model_layout(x[:, None, :, :], target)
    raise ShapeError(f"data samples have shape {tuple(x.shape[1:])} but the model takes {want} ({target.layout or 'no layout'})")


def _load_arrays(
    data: str | Path, *, target: ModelInput, preprocessing: dict[str, Any] | None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    if str(data) == DIGITS:
        spatial = target.spatial
        size = spatial[0] if spatial and spatial[0] == spatial[1] else DIGITS_SIZE
        split = load_digits_split(size=size)
        return split.x_test, split.y_test, DIGITS
    path = Path(data)
    if not path.exists():
        raise InputError(f"validation data not found: {path} (use 'digits', a .npz/.npy file or an image folder)")
    if path.is_dir():
        return (*_load_image_folder(path, target=target, preprocessing=preprocessing), str(path))
    if path.suffix == ".npz":
        archive = read_npz(path, what="validation data")
        if "x" not in archive:
            raise InputError(f"{path} has no 'x' array (found: {', '.join(archive) or 'none'})")
        return archive["x"], archive.get("y"), str(path)
    if path.suffix == ".npy":
        return read_npy(path, what="validation data"), None, str(path)
    raise InputError(f"unsupported validation data {path}: use 'digits', a .npz/.npy file or an image folder")


def _load_image_folder(path: Path, *, target: ModelInput, preprocessing: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images under ``path/<class>/``; classes are the sorted subfolder names (label = index). A folder of
    images without class subfolders is unlabeled: agreement, cosine and latency, no accuracy.

    Each image goes through the quantized model's saved PreprocessingSpec, or a
    plain one for the model's input size (stretch, GRAY/RGB, pixels / 255).
    """

    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if preprocessing is not None:
        spec = PreprocessingSpec.from_dict(preprocessing)
    elif len(target.shape) == 4:
        channels, spatial = target.channels, target.spatial
        assert channels is not None and spatial is not None  # set for every 4-D input
        spec = PreprocessingSpec.for_input((1, channels, *spatial))
    else:
        raise InputError(f"image folders need an image model; this one takes {target.shape}")
    if not classes:  # a flat folder of images: unlabeled
        source = ImageFolderSource(path, spec)
        batches = list(source)
        check_unreadable(source.unreadable, source.attempted, what="validation")
        if not batches:
            raise InputError(f"{path} has no images and no class subfolders (<class>/<image>)")
        return np.concatenate(batches), None
    xs, ys = [], []
    unreadable, attempted = [], 0
    for index, name in enumerate(classes):
        source = ImageFolderSource(path / name, spec)
        for batch in source:
            xs.append(batch)
            ys.extend([index] * batch.shape[0])
        unreadable += source.unreadable
        attempted += source.attempted
    check_unreadable(unreadable, attempted, what="validation")
    return np.concatenate(xs), np.asarray(ys, dtype=np.int64)


def load_labels(path: str | Path) -> np.ndarray:
    source = Path(path)
    check_input(source, what="labels file")
    try:
        if source.suffix == ".npz":
            archive = read_npz(source, what="labels")
            if not archive:
                raise InputError(f"labels file {source} holds no array")
            return archive["y" if "y" in archive else next(iter(archive))].ravel()
        if source.suffix == ".npy":
            return read_npy(source, what="labels").ravel()
        return np.loadtxt(source, dtype=np.int64, ndmin=1)
    except (OSError, ValueError, IndexError) as error:
        raise InputError(f"cannot read labels {source}: {error}") from None


def load_validation_data(
    data: str | Path,
    model_path: str | Path,
    *,
    labels: str | Path | np.ndarray | None = None,
    samples: int | None = None,
) -> ValidationData:
    """Load ``data`` for the model at ``model_path`` (the quantized one: its sidecar holds the preprocessing)."""
    target = model_input(model_path)
    sidecar = read_sidecar(model_path)
    preprocessing = None if sidecar is None else sidecar.preprocessing
    x, y, source = _load_arrays(data, target=target, preprocessing=preprocessing)
    if labels is not None:
        y = np.asarray(labels).ravel() if isinstance(labels, np.ndarray) else load_labels(labels)
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ShapeError(f"validation data must be a non-empty batch (N, ...), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"validation data must be numeric, got {x.dtype}")
    if y is not None:
        y = np.asarray(y)
        if y.shape[0] != x.shape[0]:
            raise ShapeError(f"{x.shape[0]} samples but {y.shape[0]} labels")
        if not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"labels must be integer class indices, got {y.dtype}")
        y = y.astype(np.int64)
    if samples is not None:
        if samples < 1:
            raise InputError(f"samples must be >= 1, got {samples}")
        x, y = x[:samples], (None if y is None else y[:samples])
    x = to_model_layout(x, target)
    if not np.all(np.isfinite(x)):
        raise InputError("validation data contains NaN or infinite values")
    return ValidationData(x=x, labels=y, source=source, layout=target.layout)


def labels_only(data: str | Path, *, labels: str | Path | None = None, samples: int | None = None) -> np.ndarray | None:
    """The labels of ``data`` ('digits' or a .npz with ``y``), or of a labels file; no model needed."""
    y: np.ndarray | None
    if labels is not None:
        y = load_labels(labels)
    elif str(data) == DIGITS:
        y = load_digits_split().y_test
    else:
        path = Path(data)
        if path.suffix != ".npz" or not path.is_file():
            raise InputError(f"labels need 'digits', a .npz with a 'y' array, or --labels; got {data}")
        y = read_npz(path, what="labels").get("y")
    if y is None:
        return None
    y = np.asarray(y).ravel().astype(np.int64)
    return y if samples is None else y[:samples]
