"""The soft-target distillation loss (Hinton et al., 2015)."""

from __future__ import annotations


def distillation_loss(student_logits, teacher_logits, labels, *, temperature: float, alpha: float):
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)``, batch-mean.

    The T^2 factor keeps the soft-target gradients on the scale of the hard-label ones.
    """
    import torch.nn.functional as F

    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    soft = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard
