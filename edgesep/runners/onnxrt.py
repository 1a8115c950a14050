"""OnnxRunner: an .onnx file in an onnxruntime CPU session."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgesep.fileio import check_input
from edgesep.runners.base import Runner, check_shape

if TYPE_CHECKING:
    import onnxruntime as ort


class OnnxRunner(Runner):
    """``OnnxRunner(path, threads=None)``; outputs keyed by the graph's output names."""

    name = "onnxruntime"

    def __init__(self, model_path: str | Path, *, threads: int | None = None):
        super().__init__()
        self.model_path = check_input(model_path, what="ONNX model")
        self.threads = threads
        self._session: ort.InferenceSession | None = None
        self._input_shapes: dict[str, list] = {}

    def _activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self._session = session
        inputs = session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self._input_shapes = {i.name: [d if isinstance(d, int) else None for d in i.shape] for i in inputs}
        self.output_names = [o.name for o in session.get_outputs()]

    def _deactivate(self) -> None:
        self._session = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self._session
        assert session is not None  # Runner.infer() only calls _infer while active
        for name, value in feed.items():
            check_shape(name, value, self._input_shapes[name], runner=self.name)
        values = session.run(self.output_names, {k: v.astype(np.float32, copy=False) for k, v in feed.items()})
        return dict(zip(self.output_names, values))
