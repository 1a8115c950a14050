"""How a format executes: context-manager runners with activate / infer / deactivate.

``with TfliteRunner("m.tflite", threads=2) as runner: outputs = runner.infer(x)``.
Runners record the time of every inference and know nothing about datasets,
comparison or devices.  The heavy libraries are imported on ``activate``.
"""

from __future__ import annotations

from edgesep.runners.base import Runner
from edgesep.runners.onnxrt import OnnxRunner
from edgesep.runners.pytorch import TorchRunner
from edgesep.runners.tflite import TfliteRunner

__all__ = ["OnnxRunner", "Runner", "TfliteRunner", "TorchRunner"]
