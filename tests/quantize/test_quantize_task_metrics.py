"""Task metrics for recognizers, layout detectors and face verifiers (#13): each on hand-made outputs with a
known answer, identical outputs scoring 1, and the PicoDet decoding checked against rapid-layout's own code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgesep.errors import ConfigError
from edgesep.quantize.sensitivity import task_metric
from edgesep.runners.tflite import ModelRun


def _ctc(*sequences: list[int], classes: int = 5) -> np.ndarray:
    """(N, T, C) one-hot scores whose per-step argmax is each given sequence."""
    return np.stack([np.eye(classes, dtype=np.float32)[steps] * 0.9 + 0.02 for steps in sequences])


def test_ctc_greedy_collapses_repeats_and_drops_blanks():
    from edgesep.quantize.ctc_metrics import as_text, ctc_greedy

    scores = _ctc([1, 1, 0, 2, 2, 3], [0, 4, 0, 4, 4, 0], [0, 0, 0, 0, 0, 0])
    assert ctc_greedy(scores) == [(1, 2, 3), (4, 4), ()]  # a blank between repeats keeps both
    assert as_text((1, 2, 3), ["a", "b", "c"]) == "abc"


def test_ctc_string_agreement_and_edit_distance():
    from edgesep.quantize.ctc_metrics import edit_distance, string_agreement

    reference = _ctc([1, 1, 0, 2, 2, 3], [0, 4, 0, 4, 4, 0], [0, 0, 0, 0, 0, 0])
    assert string_agreement(reference, reference) == 1.0 and edit_distance(reference, reference) == 0.0
    # first: 3 dropped (distance 1 of 3); second: the same string through other steps; third: "" vs (1,)
    candidate = _ctc([1, 0, 0, 2, 2, 2], [4, 4, 0, 0, 4, 4], [0, 1, 1, 0, 0, 0])
    assert string_agreement(reference, candidate) == pytest.approx(1 / 3)
    assert edit_distance(reference, candidate) == pytest.approx((1 / 3 + 0 + 1) / 3)
    run = lambda scores: ModelRun(outputs=(scores,), latency_ms=0.0)  # noqa: E731
    assert task_metric("ctc")(run(reference), run(candidate)) == pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match=r"\(N, T, C\)"):
        string_agreement(reference[:, :, 0], reference[:, :, 0])


def _onet(boxes, faces) -> tuple[np.ndarray, ...]:
    """ONet's outputs in facenet-pytorch's order: box regression, landmarks, face probability."""
    faces = np.asarray(faces, np.float32)
    return (np.asarray(boxes, np.float32), np.zeros((len(faces), 10), np.float32), np.stack([1 - faces, faces], 1))


def test_face_agreement_and_box_error():
    from edgesep.quantize.face_metrics import box_error, face_agreement

    reference = _onet([[0.1, 0.1, -0.1, 0.0], [0.0, 0.0, 0.0, 0.0], [0.2, 0.0, 0.0, 0.0]], [0.95, 0.8, 0.1])
    assert face_agreement(reference, reference) == 1.0 and box_error(reference, reference) == 0.0
    candidate = _onet([[0.1, 0.1, -0.1, 0.04], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], [0.9, 0.6, 0.2])
    assert face_agreement(reference, candidate) == pytest.approx(2 / 3)  # the second falls below 0.7
    assert box_error(reference, candidate) == pytest.approx(0.04 / 8)  # faces only: the third does not count
    shuffled = candidate[::-1]  # outputs found by width, in any order
    assert face_agreement(reference, shuffled) == pytest.approx(2 / 3)
    run = lambda outputs: ModelRun(outputs=outputs, latency_ms=0.0)  # noqa: E731
    assert task_metric("face@0.7")(run(reference), run(candidate)) == pytest.approx(2 / 3)
    assert task_metric("face@0.5")(run(reference), run(candidate)) == 1.0


SIZE = (64, 64)  # strides 8, 16, 32, 64: 64, 16, 4 and 1 anchors


def _picodet(detections, *, classes: int = 3, bins: int = 8) -> list[np.ndarray]:
    """PicoDet outputs (scores per stride, then distributions per stride) for one image: each detection is
    (stride index, anchor, class, score, (left, top, right, bottom) distances in strides, whole bins)."""
    counts = [64, 16, 4, 1]
    scores = [np.full((1, n, classes), 0.01, np.float32) for n in counts]
    distributions = [np.zeros((1, n, 4 * bins), np.float32) for n in counts]
    for level, anchor, label, score, distances in detections:
        scores[level][0, anchor, label] = score
        logits = np.full((4, bins), -30.0, np.float32)
        logits[np.arange(4), distances] = 30.0  # a peaked softmax: the expected distance is the bin
        distributions[level][0, anchor] = logits.ravel()
    return scores + distributions


def test_picodet_decoding_gives_the_boxes_and_nms_keeps_the_best():
    from edgesep.quantize.layout_metrics import decode

    # stride 8, anchor 9 = row 1, col 1: centre (12, 12); distances (1, 1, 2, 1) strides -> (4, 4, 28, 20)
    # a second, weaker anchor next to it (anchor 10, centre (20, 12)) overlaps it by IoU > 0.5: suppressed
    outputs = _picodet([(0, 9, 2, 0.9, [1, 1, 2, 1]), (0, 10, 2, 0.7, [2, 1, 1, 1]), (1, 0, 0, 0.6, [0, 0, 1, 1])])
    (found,) = decode(outputs, input_size=SIZE)
    assert [(label, round(score, 2), box.tolist()) for label, score, box in found] == [
        (0, 0.6, [8.0, 8.0, 24.0, 24.0]),  # stride 16, anchor 0: centre (8, 8), distances (0, 0, 1, 1) * 16
        (2, 0.9, [4.0, 4.0, 28.0, 20.0]),
    ]
    assert decode(outputs, input_size=SIZE, conf=0.65)[0][0][0] == 2  # the class-0 box is below 0.65


def test_layout_agreement_matches_same_class_boxes():
    from edgesep.quantize.layout_metrics import layout_agreement

    reference = _picodet([(0, 9, 2, 0.9, [1, 1, 2, 1]), (1, 0, 0, 0.6, [0, 0, 1, 1])])
    assert layout_agreement(reference, reference, input_size=SIZE) == 1.0
    other_class = _picodet([(0, 9, 1, 0.9, [1, 1, 2, 1]), (1, 0, 0, 0.6, [0, 0, 1, 1])])
    assert layout_agreement(reference, other_class, input_size=SIZE) == pytest.approx(0.5)  # 2 * 1 / (2 + 2)
    lost = _picodet([(0, 9, 2, 0.9, [1, 1, 2, 1])])
    assert layout_agreement(reference, lost, input_size=SIZE) == pytest.approx(2 / 3)
    shuffled = reference[::-1]  # the outputs in another order (a converter's) pair up by anchor count and width
    assert layout_agreement(reference, shuffled, input_size=SIZE) == 1.0
    with pytest.raises(ConfigError, match="PicoDet's 8 outputs"):
        layout_agreement(reference[:4], reference[:4], input_size=SIZE)


def test_picodet_decoding_matches_rapid_layouts_post_processing():
    """Random head outputs at the real input size: the same boxes, scores and classes as rapid-layout's code."""
    if importlib.util.find_spec("rapid_layout") is None:
        pytest.skip("rapid-layout (tests/zoo-requirements.txt) not installed")
    from edgesep.quantize.layout_metrics import decode

    origin = Path(importlib.util.find_spec("rapid_layout").origin).parent / "model_handler" / "pp" / "post_process.py"
    spec = importlib.util.spec_from_file_location("rapid_layout_post_process", origin)  # numpy only, no engine
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    counts = [7600, 1900, 475, 130]
    scores = [(rng.random((1, n, 10)) ** 40).astype(np.float32) for n in counts]  # a few above 0.5
    distributions = [rng.normal(0, 2, (1, n, 32)).astype(np.float32) for n in counts]
    image = np.zeros((1, 3, 800, 608), np.float32)
    boxes, theirs_scores, labels = module.PPPostProcess(list(range(10)), 0.5, 0.5)((800, 608), image, scores + distributions)
    mine = decode(scores + distributions)[0]
    assert len(mine) == len(boxes) > 20
    np.testing.assert_allclose(np.stack([box for _, _, box in mine]), np.asarray(boxes), atol=1e-3)
    assert [label for label, _, _ in mine] == labels
    np.testing.assert_allclose([score for _, score, _ in mine], theirs_scores, rtol=1e-6)
