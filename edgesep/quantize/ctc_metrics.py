"""Task metrics for CTC text recognizers (PP-OCR rec), between a reference and a candidate batch of outputs.

The output is (N, T, C): per time step, scores over C classes, class 0 the CTC blank. Greedy decoding (what
PaddleOCR ships): argmax per step, repeats collapsed, blanks dropped. The decoded sequences are compared as
class indices, so no character dictionary is needed (it only turns indices into text for reading).

* :func:`string_agreement`: the share of samples whose decoded sequence equals the reference's exactly.
* :func:`edit_distance`: the mean over samples of Levenshtein distance / the longer sequence's length (0 when
  both are empty): 0 identical, 1 nothing in common.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgesep.errors import ConfigError

BLANK = 0


def as_sequences(batch: np.ndarray) -> np.ndarray:
    """(N, T, C) scores from a recognizer's output; ConfigError for another rank."""
    array = np.asarray(batch)
    if array.ndim != 3:
        raise ConfigError(f"a CTC metric needs (N, T, C) scores, got outputs of shape {array.shape}")
    return array


def ctc_greedy(scores: np.ndarray, *, blank: int = BLANK) -> list[tuple[int, ...]]:
    """One decoded class sequence per sample of (N, T, C) scores (logits or probabilities)."""
    best = as_sequences(scores).argmax(axis=-1)
    decoded = []
    for steps in best:
        keep = np.ones(len(steps), bool)
        keep[1:] = steps[1:] != steps[:-1]
        decoded.append(tuple(int(c) for c in steps[keep & (steps != blank)]))
    return decoded


def levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def string_agreement(reference: np.ndarray, candidate: np.ndarray, *, blank: int = BLANK) -> float:
    ref, cand = ctc_greedy(reference, blank=blank), ctc_greedy(candidate, blank=blank)
    return float(np.mean([r == c for r, c in zip(ref, cand)]))


def edit_distance(reference: np.ndarray, candidate: np.ndarray, *, blank: int = BLANK) -> float:
    ref, cand = ctc_greedy(reference, blank=blank), ctc_greedy(candidate, blank=blank)
    return float(np.mean([levenshtein(r, c) / max(len(r), len(c)) if r or c else 0.0 for r, c in zip(ref, cand)]))


def as_text(sequence: Sequence[int], characters: Sequence[str]) -> str:
    """Class indices to text: class i (i >= 1) is characters[i - 1], as PaddleOCR's dictionary files are laid out
    (one character a line; the blank is not in the file; a space class may follow the last line)."""
    return "".join(characters[i - 1] if i - 1 < len(characters) else " " for i in sequence)
