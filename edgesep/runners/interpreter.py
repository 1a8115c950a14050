"""The one place edgesep builds a TFLite interpreter on the host and lists its ops.

Every host-side step (convert's verification and runtime view, quantize's calibration passes and analysis,
validate's input reading) opens models here, so the interpreter's options are spelled once:
``xnnpack=False`` runs TFLite's reference kernels (exact, what calibration and per-tensor analysis need),
``preserve_all_tensors=True`` keeps every intermediate tensor readable (and, with it, no buffer is reused in
place).  :func:`op_details` wraps the interpreter's private op listing, the only one it offers, in one place.
The on-device agent (``devices/agent.py``) keeps its own copy: it is shipped alone to the device.
"""

from __future__ import annotations

import os
from typing import Any


def open_interpreter(
    model: bytes | bytearray | str | os.PathLike,
    *,
    threads: int | None = None,
    xnnpack: bool = True,
    preserve_all_tensors: bool = False,
    allocate: bool = True,
) -> Any:
    """An ai-edge-litert ``Interpreter`` for model bytes or a .tflite path (allocated unless ``allocate=False``)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    source: dict[str, Any] = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    options: dict[str, Any] = {}
    if not xnnpack:
        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if preserve_all_tensors:
        options["experimental_preserve_all_tensors"] = True
    interpreter = Interpreter(**source, num_threads=threads, **options)
    if allocate:
        interpreter.allocate_tensors()
    return interpreter


def op_details(interpreter: Any) -> list[dict[str, Any]]:
    """The ops (``index``, ``op_name``, ``inputs``, ``outputs``) in execution order; after ``allocate_tensors``
    with a delegate, one DELEGATE node per partition follows the original ops."""
    return interpreter._get_ops_details()  # noqa: SLF001 - the only op listing the interpreter offers


def tensor_detail(interpreter: Any, index: int) -> dict[str, Any]:
    """Name, dtype, shape and quantization of tensor ``index`` (also for tensors get_tensor_details skips)."""
    return interpreter._get_tensor_details(index, 0)  # noqa: SLF001 - the only per-index lookup it offers
