"""Property test of the ONNX converter on random small VALID graphs built from the supported op set.

Each example is a chain (NCHW, batch 1) of 1-4 body ops followed by a tail, checked
by ``onnx.checker`` and run by onnxruntime before conversion.  The property:
``edgesep.convert.convert`` either writes a model that matches onnxruntime
(relative max-abs <= 1e-4, cosine >= 0.9999) or raises a typed
:class:`edgesep.errors.EdgesepError` -- never another exception.  A
ToleranceError (converted but wrong numbers) fails the test: that is a
converter bug, not a refusal.

Bounded and deterministic: ``derandomize=True``, 30 examples (~1 s each after
TensorFlow's import).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30
TOLERANCE = 1e-4
ALLOWED_REFUSALS = ("UnsupportedOpError", "InputError", "ShapeError")


@dataclass
class GraphBuilder:
    """Accumulates nodes/initializers while tracking the current tensor and its NCHW shape."""

    shape: tuple[int, ...]
    rng: np.random.Generator
    input_shape: tuple[int, ...] = ()
    current: str = "x"
    nodes: list = field(default_factory=list)
    inits: dict = field(default_factory=dict)
    ops: list = field(default_factory=list)
    counter: int = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, array: np.ndarray, prefix: str = "w") -> str:
        key = self.name(prefix)
        self.inits[key] = np.asarray(array, dtype=np.float32) if np.asarray(array).dtype.kind == "f" else np.asarray(array)
        return key

    def weights(self, *shape: int, scale: float = 0.5, offset: float = 0.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale + offset).astype(np.float32)

    def add(self, op_type: str, inputs: list[str], shape, **attrs) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        self.ops.append(f"{op_type}{_attr_text(attrs)}")
        self.current, self.shape = out, self.inferred_shape(out, tuple(shape))
        return out

    def inferred_shape(self, name: str, expected: tuple[int, ...]) -> tuple[int, ...]:
        """The shape onnx infers for ``name`` (e.g. ceil-mode pooling); ``expected`` if it infers none."""
        from onnx import TensorProto, helper, numpy_helper, shape_inference

        graph = helper.make_graph(
            self.nodes,
            "partial",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.input_shape))],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)],
            initializer=[numpy_helper.from_array(a, n) for n, a in self.inits.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        inferred = shape_inference.infer_shapes(model, strict_mode=True)
        for value in list(inferred.graph.value_info) + list(inferred.graph.output):
            if value.name == name and value.type.tensor_type.HasField("shape"):
                dims = tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
                if dims and all(d > 0 for d in dims):
                    return dims
        return expected


def _attr_text(attrs: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")" if attrs else ""


def _out_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    span = size + pad - dilation * (kernel - 1) - 1
    return (-(-span // stride) if ceil else span // stride) + 1


# ------------------------------------------------------------------ body ops (NCHW -> NCHW)


def conv(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    group = draw(st.sampled_from(sorted({1, c} | ({2} if c % 2 == 0 else set()))))
    out_c = group * draw(st.integers(1, max(1, 8 // group)))
    k = draw(st.sampled_from([1, 2, 3]))
    stride = draw(st.sampled_from([1, 1, 2]))
    dilation = draw(st.sampled_from([1, 1, 2])) if k > 1 else 1
    pads = [draw(st.integers(0, k - 1)) for _ in range(4)] if k > 1 else [0, 0, 0, 0]
    oh = _out_size(h, k, stride, pads[0] + pads[2], dilation)
    ow = _out_size(w, k, stride, pads[1] + pads[3], dilation)
    if oh < 1 or ow < 1:
        return
    inputs = [b.current, b.const(b.weights(out_c, c // group, k, k))]
    if draw(st.booleans()):
        inputs.append(b.const(b.weights(out_c, scale=0.1), "b"))
    b.add("Conv", inputs, (n, out_c, oh, ow), kernel_shape=[k, k], strides=[stride, stride],
          dilations=[dilation, dilation], pads=pads, group=group)  # fmt: skip


def batchnorm(b: GraphBuilder, draw) -> None:
    c = b.shape[1]
    names = [b.const(b.weights(c, offset=1.0, scale=0.2)), b.const(b.weights(c, scale=0.1)),
             b.const(b.weights(c, scale=0.1)), b.const(np.abs(b.weights(c, scale=0.2)) + 0.5)]  # fmt: skip
    b.add("BatchNormalization", [b.current, *names], b.shape, epsilon=1e-5)


def activation(b: GraphBuilder, draw) -> None:
    kind = draw(st.sampled_from(["Relu", "Clip", "Sigmoid", "HardSwish", "LeakyRelu", "Tanh", "HardSigmoid", "Elu", "PRelu"]))
    if kind == "Clip":
        lo = draw(st.sampled_from([0.0, -1.0, -0.5]))
        hi = draw(st.sampled_from([6.0, 1.0, 0.5]))
        b.add("Clip", [b.current, b.const(np.array(lo, np.float32), "lo"), b.const(np.array(hi, np.float32), "hi")], b.shape)
    elif kind == "LeakyRelu":
        b.add("LeakyRelu", [b.current], b.shape, alpha=draw(st.sampled_from([0.01, 0.1, 0.3])))
    elif kind == "PRelu":
        b.add("PRelu", [b.current, b.const(np.abs(b.weights(b.shape[1], 1, 1, scale=0.2)), "slope")], b.shape)
    else:
        b.add(kind, [b.current], b.shape)


def binary(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    op = draw(st.sampled_from(["Add", "Mul", "Sub"]))
    broadcast = draw(st.sampled_from([(c, 1, 1), (1,), (w,), (1, c, h, w), (1, 1, h, 1), "residual"]))
    if broadcast == "residual":  # x op branch(x): a 1x1 conv of the same tensor (two consumers)
        source = b.current
        branch = b.add("Conv", [source, b.const(b.weights(c, c, 1, 1))], b.shape, kernel_shape=[1, 1])
        b.add(op, [source, branch], b.shape)
        return
    other = b.const(b.weights(*broadcast, scale=0.5, offset=1.0 if op == "Mul" else 0.0), "k")
    first, second = (b.current, other) if draw(st.booleans()) else (other, b.current)
    b.add(op, [first, second], b.shape)


def pool(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    k = draw(st.sampled_from([2, 3]))
    stride = draw(st.sampled_from([1, 2]))
    pads = [draw(st.integers(0, k // 2)) for _ in range(4)]
    ceil = draw(st.booleans())
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=pads)
    if ceil:
        attrs["ceil_mode"] = 1
    if op == "AveragePool" and any(pads):
        attrs["count_include_pad"] = draw(st.sampled_from([0, 1]))
    oh = _out_size(h, k, stride, pads[0] + pads[2], ceil=ceil)
    ow = _out_size(w, k, stride, pads[1] + pads[3], ceil=ceil)
    if oh < 1 or ow < 1:
        return
    if ceil and ((oh - 1) * stride >= h + pads[0] or (ow - 1) * stride >= w + pads[1]):
        # The last ceil-mode window would start in the end padding: onnx shape inference keeps it,
        # onnxruntime (like PyTorch) drops it, so such a graph has no single meaning; not generated.
        return
    b.add(op, [b.current], (n, c, oh, ow), **attrs)


def concat(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    extra = draw(st.integers(1, 4))
    source = b.current
    branch = b.add("Conv", [source, b.const(b.weights(extra, c, 1, 1))], (n, extra, h, w), kernel_shape=[1, 1])
    order = [source, branch] if draw(st.booleans()) else [branch, source]
    b.add("Concat", order, (n, c + extra, h, w), axis=draw(st.sampled_from([1, -3])))


def resize(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    if h * w > 64:
        return
    mode = draw(st.sampled_from(["nearest", "linear"]))
    transform = draw(st.sampled_from(["asymmetric", "half_pixel", "align_corners", "pytorch_half_pixel"]))
    attrs = dict(mode=mode, coordinate_transformation_mode=transform)
    if mode == "nearest":
        attrs["nearest_mode"] = draw(st.sampled_from(["floor", "round_prefer_floor", "round_prefer_ceil"]))
    scales = b.const(np.array([1, 1, 2, 2], np.float32), "scales")
    b.add("Resize", [b.current, "", scales], (n, c, 2 * h, 2 * w), **attrs)


def pad(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    mode = draw(st.sampled_from(["constant", "reflect", "edge"]))
    top, left, bottom, right = (draw(st.integers(0, 2)) for _ in range(4))
    if mode == "reflect" and max(top, bottom) >= h or mode == "reflect" and max(left, right) >= w:
        return
    pads = b.const(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads")
    inputs = [b.current, pads]
    if mode == "constant":
        inputs.append(b.const(np.array(draw(st.sampled_from([0.0, 1.5])), np.float32), "value"))
    b.add("Pad", inputs, (n, c, h + top + bottom, w + left + right), mode=mode)


BODY = {"conv": conv, "batchnorm": batchnorm, "activation": activation, "binary": binary,
        "pool": pool, "concat": concat, "resize": resize, "pad": pad}  # fmt: skip


# ------------------------------------------------------------------ tails (graph output)


def tail(b: GraphBuilder, draw) -> None:
    n, c, h, w = b.shape
    kind = draw(st.sampled_from(["none", "gap-gemm", "flatten-gemm", "reshape-gemm", "transpose", "gmp-softmax"]))
    if kind == "transpose":
        perm = draw(st.permutations([0, 1, 2, 3]))
        b.add("Transpose", [b.current], tuple(b.shape[i] for i in perm), perm=list(perm))
    elif kind in ("gap-gemm", "flatten-gemm", "reshape-gemm", "gmp-softmax"):
        if kind in ("gap-gemm", "gmp-softmax"):
            b.add("GlobalAveragePool" if kind == "gap-gemm" else "GlobalMaxPool", [b.current], (n, c, 1, 1))
        features = b.shape[1] * b.shape[2] * b.shape[3]
        if kind == "reshape-gemm":
            b.add("Reshape", [b.current, b.const(np.array([1, -1], np.int64), "shape")], (n, features))
        else:
            b.add("Flatten", [b.current], (n, features), axis=1)
        classes = draw(st.integers(2, 6))
        trans_b = draw(st.sampled_from([0, 1]))
        weight = b.weights(classes, features) if trans_b else b.weights(features, classes)
        b.add("Gemm", [b.current, b.const(weight), b.const(b.weights(classes, scale=0.1), "b")], (n, classes),
              transB=trans_b, alpha=draw(st.sampled_from([1.0, 0.5])))  # fmt: skip
        if kind == "gmp-softmax":
            b.add("Softmax", [b.current], b.shape, axis=-1)


@st.composite
def random_graphs(draw):
    """A random valid ONNX graph: (model, description of its ops)."""
    from onnx import TensorProto, checker, helper, numpy_helper

    c = draw(st.integers(1, 6))
    h = draw(st.integers(3, 10))
    w = draw(st.integers(3, 10))
    builder = GraphBuilder(shape=(1, c, h, w), input_shape=(1, c, h, w), rng=np.random.default_rng(draw(st.integers(0, 2**16))))
    for step in draw(st.lists(st.sampled_from(sorted(BODY)), min_size=1, max_size=4)):
        BODY[step](builder, draw)
    tail(builder, draw)
    if not builder.nodes:
        builder.add("Relu", ["x"], builder.shape)
    graph = helper.make_graph(
        builder.nodes,
        "fuzz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info(builder.current, TensorProto.FLOAT, list(builder.shape))],
        initializer=[numpy_helper.from_array(a, n) for n, a in builder.inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    checker.check_model(model, full_check=True)  # a generator bug, not a converter bug, if this fails
    return model, f"x{[1, c, h, w]} -> " + " -> ".join(builder.ops)


def _onnxruntime(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(case=random_graphs())
def test_random_graphs_convert_or_refuse_with_a_typed_error(case, tmp_path_factory):
    import onnx

    from edgesep.convert import convert
    from edgesep.errors import EdgesepError

    model, description = case
    folder = tmp_path_factory.mktemp("fuzz")
    source, output = folder / "model.onnx", folder / "model.tflite"
    onnx.save(model, source)
    x = np.random.default_rng(0).standard_normal(tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim))
    reference = _onnxruntime(model, x.astype(np.float32))  # the graph is valid: onnxruntime runs it
    try:
        result = convert(source, output, tolerance=TOLERANCE)
    except EdgesepError as error:  # any other exception propagates and fails the property
        assert type(error).__name__ in ALLOWED_REFUSALS, f"{description}: {type(error).__name__}: {error}"
        assert "\n" not in str(error), f"{description}: multi-line message {error!s}"
        assert not output.exists(), f"{description}: refused but wrote {output}"
        return
    assert result.fidelity.relative <= TOLERANCE and result.fidelity.cosine >= 0.9999, (description, result.fidelity)
    assert output.is_file() and output.stat().st_size == result.size_bytes
    assert int(np.prod(result.output_shapes[0])) == reference.size, (description, result.output_shapes, reference.shape)
