"""Adam without ``torch.optim`` (for the steps that train after TensorFlow is loaded: qat.py, adaround.py)."""

from __future__ import annotations

import torch


class Adam:
    """Adam (Kingma & Ba 2015) without ``torch.optim``: constructing any ``torch.optim`` optimizer imports
    torch._dynamo and with it triton, whose C extension segfaults when TensorFlow is already loaded (as it is
    when quantize prepares the PyTorch model).  ``step`` updates the parameters from their ``.grad`` and clears it."""

    def __init__(self, parameters: list[torch.Tensor], *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameters = parameters
        self.lr, self.betas, self.eps = lr, betas, eps
        self.first = [torch.zeros_like(p) for p in parameters]
        self.second = [torch.zeros_like(p) for p in parameters]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for parameter, first, second in zip(self.parameters, self.first, self.second):
            if parameter.grad is None:
                continue
            first.mul_(beta1).add_(parameter.grad, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(parameter.grad, parameter.grad, value=1 - beta2)
            denominator = (second / correction2).sqrt_().add_(self.eps)
            parameter.addcdiv_(first, denominator, value=-self.lr / correction1)
            parameter.grad = None
