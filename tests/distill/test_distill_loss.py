"""distillation_loss equals its closed form; DistillConfig validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesep.distill import DistillConfig
from edgesep.distill.loss import distillation_loss
from edgesep.errors import InputError

STUDENT = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
TEACHER = np.array([[2.0, 1.0, 0.0], [0.5, 0.5, 2.5]])
LABELS = np.array([1, 2])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _closed_form(temperature: float, alpha: float) -> float:
    p_t, p_s = _softmax(TEACHER / temperature), _softmax(STUDENT / temperature)
    kl = np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    ce = np.mean(-np.log(_softmax(STUDENT)[np.arange(2), LABELS]))
    return alpha * temperature**2 * kl + (1 - alpha) * ce


@pytest.mark.parametrize(("temperature", "alpha"), [(1.0, 0.5), (4.0, 0.7), (2.5, 0.0), (3.0, 1.0)])
def test_loss_matches_closed_form(temperature, alpha):
    loss = distillation_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS), temperature=temperature, alpha=alpha)
    assert float(loss) == pytest.approx(_closed_form(temperature, alpha), rel=1e-12, abs=1e-12)


def test_loss_hand_value():
    # T=1, alpha=0.5, one sample: p_t = (0.5, 0.5), p_s = (0.5, 0.5) -> KL 0; CE = ln 2.
    loss = distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), temperature=1.0, alpha=0.5)
    assert float(loss) == pytest.approx(0.5 * np.log(2), rel=1e-7)


def test_identical_logits_have_zero_soft_loss():
    logits = torch.tensor(STUDENT)
    loss = distillation_loss(logits, logits.clone(), torch.tensor(LABELS), temperature=4.0, alpha=1.0)
    assert abs(float(loss)) < 1e-12


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"alpha": 1.5}, {"alpha": -0.1}, {"epochs": 0}, {"lr": 0.0}])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(InputError):
        DistillConfig(**kwargs)
