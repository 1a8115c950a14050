"""Task metrics for a face verifier/regressor such as MTCNN's ONet, between a reference and a candidate batch.

ONet's outputs per crop: box regression (N, 4: offsets of the box corners in units of the crop's side),
landmarks (N, 10) and face probability (N, 2: softmax over no-face/face). MTCNN keeps a crop as a face when the
face probability exceeds its last-stage threshold (0.7 in facenet-pytorch).

* :func:`face_agreement`: the share of crops where reference and candidate make the same face/no-face decision.
* :func:`box_error`: the mean absolute difference of the box regression over the crops the reference calls faces
  (in units of the crop's side: 0.01 is half a pixel at ONet's 48 px input).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgesep.errors import ConfigError

THRESHOLD = 0.7


def onet_outputs(outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(box regression (N, 4), face probability (N,)) picked from ONet's outputs by width, in any order."""
    by_width = {np.asarray(o).reshape(len(o), -1).shape[1]: np.asarray(o, np.float64).reshape(len(o), -1) for o in outputs}
    if 4 not in by_width or 2 not in by_width:
        raise ConfigError(f"a face metric needs a (N, 4) box and a (N, 2) probability output, got widths {sorted(by_width)}")
    return by_width[4], by_width[2][:, 1]


def face_agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], *, threshold: float = THRESHOLD) -> float:
    _, ref = onet_outputs(reference)
    _, cand = onet_outputs(candidate)
    return float(np.mean((ref > threshold) == (cand > threshold)))


def box_error(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], *, threshold: float = THRESHOLD) -> float:
    """NaN when the reference calls no crop a face."""
    ref_box, ref_face = onet_outputs(reference)
    cand_box, _ = onet_outputs(candidate)
    faces = ref_face > threshold
    return float(np.abs(ref_box[faces] - cand_box[faces]).mean()) if faces.any() else float("nan")
