"""ONNX -> float32 TFLite through our own NHWC lowering, verified against onnxruntime.

Light: TensorFlow, onnx and onnxruntime are imported when a function is called.
"""

from edgesep.convert.step import ConvertResult, convert

__all__ = ["ConvertResult", "convert"]

from edgesep._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, "convert")
