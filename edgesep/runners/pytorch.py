"""TorchRunner: an ``nn.Module`` in eval mode on CPU under ``torch.no_grad``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgesep.runners.base import Runner


class TorchRunner(Runner):
    """``TorchRunner(module, input_names=("input",), output_names=None)``."""

    name = "torch"

    def __init__(
        self,
        module,
        *,
        input_names: Sequence[str] = ("input",),
        output_names: Sequence[str] | None = None,
        threads: int | None = None,
    ):
        super().__init__()
        self.module = module
        self.input_names = list(input_names)
        self._given_output_names = list(output_names) if output_names else None
        self.threads = threads
        self._previous_threads: int | None = None

    def _activate(self) -> None:
        import torch

        self.module.eval()
        if self.threads is not None:
            self._previous_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)

    def _deactivate(self) -> None:
        import torch

        if self._previous_threads is not None:
            torch.set_num_threads(self._previous_threads)
            self._previous_threads = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(feed[name], dtype=np.float32)) for name in self.input_names]
        with torch.no_grad():
            result = self.module(*tensors)
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        names = self._given_output_names or [f"output_{i}" for i in range(len(values))]
        self.output_names = names
        return {name: value.detach().cpu().numpy() for name, value in zip(names, values)}
