"""edgesep: from a PyTorch depthwise-separable CNN to a validated int8 model on a device.

The Python API mirrors the CLI; each step is one function returning a typed result::

    import edgesep
    onnx = edgesep.export("default", "model.onnx")      # the trained digits SepCNN
    tfl = edgesep.convert("model.onnx", "model.tflite")
    ...

Step functions import torch / tensorflow / onnxruntime only when called.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "export": "edgesep.export",
    "convert": "edgesep.convert",
    "quantize": "edgesep.quantize",
    "validate": "edgesep.validate",
    "run": "edgesep.pipeline",
}


def __getattr__(name: str):
    # Lazy so that `import edgesep` stays light.  `edgesep.export` etc. are the step packages, made
    # callable (edgesep._callable), so `edgesep.export(...)` works before and after `import edgesep.export`.
    if name in _API:
        import importlib

        module = importlib.import_module(_API[name])
        value = module if name != "run" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgesep' has no attribute {name!r}")
