"""PyTorch -> ONNX, verified against onnxruntime.  Light: torch is imported when called."""

from edgesep.export.step import DEFAULT_OPSET, ExportResult, export

__all__ = ["DEFAULT_OPSET", "ExportResult", "export"]

from edgesep._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, "export")
