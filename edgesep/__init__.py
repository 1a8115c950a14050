"""edgesep: from a PyTorch depthwise-separable CNN to a validated int8 model on a device.

The Python API mirrors the CLI; each step is one function returning a typed result::

    import edgesep
    onnx = edgesep.export("edgesep.models:sepcnn_digits", "model.onnx", input_shape=(1, 1, 16, 16))
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
    # Lazy so that `import edgesep` stays light.  Once bound, the function
    # shadows the same-named subpackage attribute on purpose: `edgesep.export(...)`
    # is the step, `edgesep.export.<module>` stays importable with `import`.
    if name in _API:
        import importlib

        module = importlib.import_module(_API[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgesep' has no attribute {name!r}")
