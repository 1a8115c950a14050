"""Task metrics for probability maps (text detection, segmentation), between a reference and a candidate batch.

* :func:`map_iou` ``pooled=False``: IoU of the maps thresholded at T, averaged over the samples where the reference
  has any pixel above T (every such sample weighs the same, a 14-pixel stray region like a page of text);
  ``pooled=True``: the sum of intersections over the sum of unions on the same samples (big regions weigh more).
* :func:`box_agreement`: what a text detector's user sees. The boxes are found as PaddleOCR's DB post-processing
  does: pixels above ``threshold`` (0.3), 8-connected regions, a region's score is its mean probability and it
  is kept when the score reaches ``box_threshold`` (0.6) and its bounding box is at least ``min_size`` (3) pixels
  on both sides; a candidate box matches a reference box at box IoU >= ``match_iou`` (0.5), one to one, greedily by
  IoU. The value is the F1 of the matches over the samples where either side has a box (1.0 when none has).

Maps are (N, H, W) or anything that squeezes to it (N, 1, H, W), (N, H, W, 1).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgesep.errors import ConfigError


def as_maps(batch: np.ndarray) -> np.ndarray:
    """(N, H, W) from a batch of single-channel maps; ConfigError for anything else."""
    array = np.asarray(batch, np.float64)
    squeezed = array.reshape(array.shape[0], *[d for d in array.shape[1:] if d != 1])
    if squeezed.ndim != 3:
        raise ConfigError(f"a map metric needs single-channel 2-D maps, got outputs of shape {array.shape}")
    return squeezed


def map_iou(reference: np.ndarray, candidate: np.ndarray, *, threshold: float, pooled: bool = False) -> float:
    """Any per-sample shape: each sample's values are one flat map."""
    ref = np.asarray(reference).reshape(len(reference), -1) > threshold
    cand = np.asarray(candidate).reshape(len(candidate), -1) > threshold
    keep = ref.any(axis=1)
    if not keep.any():
        return 1.0
    inter = (ref & cand)[keep].sum(axis=1)
    union = (ref | cand)[keep].sum(axis=1)
    return float(inter.sum() / union.sum()) if pooled else float(np.mean(inter / union))


def text_boxes(
    probability: np.ndarray, *, threshold: float = 0.3, box_threshold: float = 0.6, min_size: int = 3
) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) boxes, bottom/right exclusive, of one (H, W) probability map."""
    from scipy import ndimage

    labels, count = ndimage.label(probability > threshold, structure=np.ones((3, 3), bool))
    boxes = []
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        rows, cols = window
        if rows.stop - rows.start < min_size or cols.stop - cols.start < min_size:
            continue
        region = labels[window] == index
        if float(probability[window][region].mean()) >= box_threshold:
            boxes.append((rows.start, cols.start, rows.stop, cols.stop))
    return boxes


def _box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    height = min(a[2], b[2]) - max(a[0], b[0])
    width = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(height, 0) * max(width, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def greedy_match_f1(pairs: Iterable[tuple[float, int, int]], sizes: tuple[int, int], *, match_iou: float = 0.5) -> float | None:
    """F1 of one-to-one matches between a reference and a candidate set of ``sizes`` boxes, taken greedily by
    IoU from ``pairs`` (IoU, reference index, candidate index); None when neither side has a box."""
    if not any(sizes):
        return None
    used_ref, used_cand = set(), set()
    for iou, i, j in sorted(pairs, reverse=True):
        if iou < match_iou:
            break
        if i not in used_ref and j not in used_cand:
            used_ref.add(i)
            used_cand.add(j)
    return 2 * len(used_ref) / sum(sizes)


def box_f1(reference: list, candidate: list, *, match_iou: float = 0.5) -> float | None:
    """F1 of one-to-one matches (greedy by IoU); None when neither side has a box."""
    pairs = ((_box_iou(r, c), i, j) for i, r in enumerate(reference) for j, c in enumerate(candidate))
    return greedy_match_f1(pairs, (len(reference), len(candidate)), match_iou=match_iou)


def box_agreement(
    reference: np.ndarray, candidate: np.ndarray, *, threshold: float = 0.3, box_threshold: float = 0.6,
    min_size: int = 3, match_iou: float = 0.5,
) -> float:  # fmt: skip
    scores = []
    for ref_map, cand_map in zip(as_maps(reference), as_maps(candidate)):
        score = box_f1(text_boxes(ref_map, threshold=threshold, box_threshold=box_threshold, min_size=min_size),
                       text_boxes(cand_map, threshold=threshold, box_threshold=box_threshold, min_size=min_size),
                       match_iou=match_iou)  # fmt: skip
        if score is not None:
            scores.append(score)
    return float(np.mean(scores)) if scores else 1.0
