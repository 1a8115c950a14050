"""The TFLite converter configured for a lowered model (float32, builtin ops only)."""

from __future__ import annotations

from edgesep.convert.interface import with_onnx_interface
from edgesep.convert.lowering import LoweredModel
from edgesep.errors import UnsupportedOpError


def make_converter(lowered: LoweredModel):
    """A float32 ``tf.lite.TFLiteConverter`` for ``lowered``; quantize adds optimizations to it."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([lowered.concrete_function], lowered.module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    return converter


def to_tflite_bytes(lowered: LoweredModel, *, converter=None) -> bytes:
    """Run the converter (a TF op with no TFLite builtin becomes an UnsupportedOpError) and give the result
    the ONNX interface (order, names, signature keys)."""

    converter = converter or make_converter(lowered)
    try:
        model_bytes = bytes(converter.convert())
    except Exception as error:  # ConverterError and friends
        text = str(error).strip()
        lines = [line for line in text.splitlines() if "error:" in line] or text.splitlines() or [type(error).__name__]
        raise UnsupportedOpError("<tflite>", "<converter>", (), f"the TFLite converter failed: {lines[0].strip()[:300]}") from None
    return with_onnx_interface(model_bytes, input_names=lowered.input_names, output_names=lowered.output_names)
