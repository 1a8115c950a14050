"""Output comparison shared by every verification step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgesep.errors import ToleranceError


@dataclass(frozen=True)
class Fidelity:
    """How closely ``candidate`` outputs follow ``reference`` outputs."""

    max_abs: float
    mean_abs: float
    relative: float  # max_abs / max(|reference|), the "relative to output scale" error
    cosine: float
    top1_agreement: float | None  # only for 2-D (batch, classes) outputs

    def to_dict(self) -> dict:
        return asdict(self)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    reference = np.asarray(reference)
    candidate = np.asarray(candidate)
    if reference.ndim != 2 or reference.shape[1] < 2:
        return None
    return float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))


def compare(reference: np.ndarray, candidate: np.ndarray) -> Fidelity:
    """Compare one output tensor; shapes must match."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs candidate {candidate.shape}")
    diff = np.abs(reference - candidate)
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    max_abs = float(diff.max()) if diff.size else 0.0
    return Fidelity(
        max_abs=max_abs,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        relative=max_abs / scale if scale > 0 else max_abs,
        cosine=cosine_similarity(reference, candidate),
        top1_agreement=top1_agreement(reference, candidate),
    )


def compare_all(reference: list[np.ndarray], candidate: list[np.ndarray]) -> Fidelity:
    """Compare several outputs; returns the worst figure of each kind."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference outputs vs {len(candidate)} candidate outputs")
    return _worst([compare(r, c) for r, c in zip(reference, candidate)])


def _worst(parts: list[Fidelity]) -> Fidelity:
    """The worst figure of each kind over per-output comparisons."""
    agreements = [p.top1_agreement for p in parts if p.top1_agreement is not None]
    return Fidelity(
        max_abs=max(p.max_abs for p in parts),
        mean_abs=max(p.mean_abs for p in parts),
        relative=max(p.relative for p in parts),
        cosine=min(p.cosine for p in parts),
        top1_agreement=min(agreements) if agreements else None,
    )


DEFAULT_TOLERANCE = 1e-3  # max-abs relative to each output's scale: float32 noise of deep nets stays < 5e-4
MIN_SCALE = 1e-2  # an output near zero (a detector's empty map) is judged as if its scale were this


def check_stacked(
    reference: list[list[np.ndarray]],
    candidate: list[list[np.ndarray]],
    *,
    tolerance: float,
    what: str,
    names: Sequence[str] | None = None,
    min_scale: float = MIN_SCALE,
) -> Fidelity:
    """Stack per-sample outputs (``[sample][output]``), compare them and raise a ToleranceError when an
    output's max-abs error exceeds ``tolerance`` times its scale: max |reference|, but at least ``min_scale``
    (so ``tolerance * min_scale`` is an absolute floor for outputs near zero, and ``tolerance=0`` stays
    exact). ``what`` names the pair, e.g. "TFLite output differs from onnxruntime", ``names`` the outputs."""

    count = len(reference[0])
    stacked_ref = [np.concatenate([sample[i] for sample in reference]) for i in range(count)]
    stacked_cand = [np.concatenate([sample[i] for sample in candidate]) for i in range(len(candidate[0]))]
    if len(stacked_ref) != len(stacked_cand):
        raise ValueError(f"{len(stacked_ref)} reference outputs vs {len(stacked_cand)} candidate outputs")
    parts = [compare(ref, cand) for ref, cand in zip(stacked_ref, stacked_cand)]
    for index, (ref, part) in enumerate(zip(stacked_ref, parts)):
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        if not np.isfinite(part.max_abs) or part.max_abs > tolerance * max(scale, min_scale):
            label = f" {names[index]!r}" if names is not None and count > 1 else ""
            raise ToleranceError(
                f"{what}{label}: max-abs {part.max_abs:.3g} ({part.relative:.3g} of the output scale {scale:.3g}) "
                f"> tolerance {tolerance:g} (of a scale at least {min_scale:g})"
            )
    return _worst(parts)
