"""Labelled training data for fine-tuning and distillation: ``digits`` or a .npz of four arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesep.data.digits import DigitsSplit, load_digits_split
from edgesep.errors import InputError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_labeled(name_or_path: str | Path) -> DigitsSplit:
    """``"digits"`` (built-in split) or a .npz holding x_train, y_train, x_test, y_test (x: NCHW float32)."""
    if str(name_or_path) == "digits":
        return load_digits_split()
    path = Path(name_or_path)
    if path.suffix != ".npz" or not path.is_file():
        raise InputError(f"training data must be 'digits' or an existing .npz file, got {name_or_path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in NPZ_KEYS if key in archive}
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path}: {error}") from error
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise InputError(f"{path} lacks {', '.join(missing)}; it needs {', '.join(NPZ_KEYS)}")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise InputError(f"{path}: x_{split} must be (N, C, H, W) and y_{split} (N,), got {x.shape} and {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"{path}: y_{split} must hold integer class labels, got {y.dtype}")
    return DigitsSplit(
        x_train=np.ascontiguousarray(arrays["x_train"], dtype=np.float32),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=np.ascontiguousarray(arrays["x_test"], dtype=np.float32),
        y_test=arrays["y_test"].astype(np.int64),
    )
