"""Small seeded data and models for the distill tests."""

from __future__ import annotations

import pytest

from edgesep.data.digits import DigitsSplit, load_digits_split


@pytest.fixture(scope="session")
def digits() -> DigitsSplit:
    return load_digits_split()


@pytest.fixture(scope="session")
def small_digits(digits) -> DigitsSplit:
    """320 training and 200 test samples: enough to see learning, fast on one thread."""
    return DigitsSplit(digits.x_train[:320], digits.y_train[:320], digits.x_test[:200], digits.y_test[:200])


@pytest.fixture(scope="session")
def quick_teacher(digits):
    """A narrow standard-conv teacher trained for 4 epochs (seeded)."""
    import torch

    from edgesep.distill.teacher import digits_teacher
    from edgesep.models.training import TrainConfig, train_classifier

    torch.manual_seed(0)
    teacher = digits_teacher(width=8)
    result = train_classifier(teacher, digits, config=TrainConfig(epochs=4, seed=0))
    assert result.test_accuracy > 0.85
    return teacher.eval()
