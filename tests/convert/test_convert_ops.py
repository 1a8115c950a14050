"""Per-op lowering tests: small seeded ONNX graphs, TFLite vs onnxruntime, parametrized over attributes."""

from __future__ import annotations

import numpy as np
import pytest
from convert_helpers import convert_in_memory, make_model  # noqa: E402
from onnx import helper

TIGHT = 1e-5  # relative to the output scale


def W(*shape, seed=1, scale=0.5):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def check(nodes, x_shape, inits=None, *, inputs=None, outputs=("y",), opset=17, keep_nchw=False):
    model = make_model(nodes, inputs or [("x", list(x_shape))], [(o, None) for o in outputs], inits, opset=opset)
    fidelity, histogram, lowered = convert_in_memory(model, keep_nchw=keep_nchw)
    assert fidelity.relative < TIGHT, fidelity
    assert fidelity.cosine > 0.99999
    return histogram, lowered


# ---------------------------------------------------------------- Conv

CONV_CASES = {
    "k3-p1-s1": dict(w=(6, 4, 3, 3), attrs=dict(pads=[1, 1, 1, 1])),
    "k3-p1-s2": dict(w=(6, 4, 3, 3), attrs=dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    "k3-valid": dict(w=(6, 4, 3, 3), attrs=dict()),
    "asymmetric-pads": dict(w=(6, 4, 3, 3), attrs=dict(pads=[0, 1, 2, 1])),
    "stride-2x1-rect-kernel": dict(w=(6, 4, 3, 5), attrs=dict(pads=[1, 2, 1, 2], strides=[2, 1])),
    "dilation-2": dict(w=(6, 4, 3, 3), attrs=dict(pads=[2, 2, 2, 2], dilations=[2, 2])),
    "same-upper-s2": dict(w=(6, 4, 3, 3), attrs=dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "same-lower-s2": dict(w=(6, 4, 4, 4), attrs=dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    "auto-valid": dict(w=(6, 4, 3, 3), attrs=dict(auto_pad="VALID", strides=[2, 2])),
    "grouped-2": dict(w=(6, 2, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=2)),
    "depthwise": dict(w=(4, 1, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=4)),
    "depthwise-multiplier-2": dict(w=(8, 1, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=4)),
    "depthwise-s2": dict(w=(4, 1, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=4, strides=[2, 2])),
    "depthwise-dilation-2": dict(w=(4, 1, 3, 3), attrs=dict(pads=[2, 2, 2, 2], group=4, dilations=[2, 2])),
    "pointwise-no-bias": dict(w=(6, 4, 1, 1), attrs=dict(), bias=False),
}


@pytest.mark.parametrize("case", CONV_CASES, ids=list(CONV_CASES))
def test_conv(case):
    spec = CONV_CASES[case]
    inits = {"w": W(*spec["w"])}
    names = ["x", "w"]
    if spec.get("bias", True):
        inits["b"] = W(spec["w"][0], seed=2)
        names.append("b")
    histogram, _ = check([helper.make_node("Conv", names, ["y"], **spec["attrs"])], (1, 4, 9, 10), inits)
    assert "TRANSPOSE" not in histogram
    if case in ("k3-p1-s1", "same-upper-s2", "depthwise", "dilation-2"):
        assert "PAD" not in histogram  # pads equal to TF's SAME become padding="SAME", not a PAD op
    if "depthwise" in case:
        assert histogram.get("DEPTHWISE_CONV_2D") == 1


@pytest.mark.parametrize("activation", ["Relu", "Relu6"])
def test_conv_activation_is_fused(activation):
    inits = {"w": W(6, 4, 3, 3), "b": W(6, seed=2)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])]
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    else:
        inits.update(lo=np.array(0.0, np.float32), hi=np.array(6.0, np.float32))
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    histogram, _ = check(nodes, (1, 4, 8, 8), inits)
    assert histogram == {"CONV_2D": 1}


def test_conv_batchnorm_folds_into_conv():
    inits = {"w": W(6, 4, 3, 3), "s": W(6, seed=3) + 1.0, "bb": W(6, seed=4), "m": W(6, seed=5), "v": np.abs(W(6, seed=6)) + 0.5}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"], epsilon=1e-3),
    ]
    histogram, _ = check(nodes, (1, 4, 8, 8), inits)
    assert histogram == {"CONV_2D": 1}


CONV_TRANSPOSE_CASES = {
    "s2-k3-p1-op1": dict(w=(4, 6, 3, 3), attrs=dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    "s2-k2": dict(w=(4, 6, 2, 2), attrs=dict(strides=[2, 2])),
    "s1-k3-asymmetric": dict(w=(4, 6, 3, 3), attrs=dict(pads=[0, 1, 1, 0])),
    "grouped-2": dict(w=(4, 3, 3, 3), attrs=dict(strides=[2, 2], group=2, pads=[1, 1, 1, 1])),
}


@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES, ids=list(CONV_TRANSPOSE_CASES))
def test_conv_transpose(case):
    spec = CONV_TRANSPOSE_CASES[case]
    out_channels = spec["w"][1] * spec["attrs"].get("group", 1)
    inits = {"w": W(*spec["w"]), "b": W(out_channels, seed=2)}
    histogram, _ = check([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **spec["attrs"])], (1, 4, 5, 6), inits)
    assert histogram.get("TRANSPOSE_CONV", 0) >= 1 and "TRANSPOSE" not in histogram


# ---------------------------------------------------------------- activations

ACTIVATIONS = {
    "Relu": ([], {}),
    "Clip-0-6": (["lo", "hi"], {"lo": 0.0, "hi": 6.0}),
    "Clip-n1-1": (["lo", "hi"], {"lo": -1.0, "hi": 1.0}),
    "Clip-min-only": (["lo"], {"lo": 0.25}),
    "LeakyRelu": ([], {}),
    "Sigmoid": ([], {}),
    "Tanh": ([], {}),
    "HardSigmoid": ([], {}),
    "HardSigmoid-torch": ([], {}),
    "HardSwish": ([], {}),
    "Elu": ([], {}),
}


@pytest.mark.parametrize("name", ACTIVATIONS, ids=list(ACTIVATIONS))
def test_activation(name):
    extra, consts = ACTIVATIONS[name]
    op = name.split("-")[0]
    attrs = {"alpha": 0.1} if op == "LeakyRelu" else {}
    if name == "HardSigmoid-torch":
        attrs = {"alpha": 1.0 / 6.0, "beta": 0.5}
    inits = {k: np.array(v, np.float32) for k, v in consts.items()}
    nodes = [helper.make_node(op, ["x", *extra], ["y"], **attrs)]
    histogram, _ = check(nodes, (1, 3, 6, 5), inits)
    if op == "HardSwish":
        assert histogram == {"HARD_SWISH": 1}


def test_prelu_per_channel():
    inits = {"slope": W(3, 1, 1, seed=7)}
    histogram, _ = check([helper.make_node("PRelu", ["x", "slope"], ["y"])], (1, 3, 6, 5), inits)
    assert histogram == {"PRELU": 1}


@pytest.mark.parametrize("slopes,expected", [
    ([0.25, -0.1, 0.9], {"MUL": 1, "ADD": 1}),  # every slope < 1: x + relu((alpha - 1) x)
    ([0.25, 1.5, 0.9], {"MUL": 2, "ADD": 1}),  # a slope >= 1: x + (1 - alpha) relu(-x)
])  # fmt: skip
def test_integer_prelu_forms_match_onnxruntime(slopes, expected):
    """The int8 forms of PRelu (XNNPACK has no int8 PRELU): the same numbers as onnxruntime in float."""
    from edgesep.convert.lowering import lower
    from edgesep.convert.tflite import to_tflite_bytes
    from edgesep.convert.tflite_inspect import op_histogram
    from edgesep.convert.verify import verify_tflite

    slope = np.array(slopes, np.float32).reshape(3, 1, 1)
    model = make_model([helper.make_node("PRelu", ["x", "slope"], ["y"])], [("x", [1, 3, 6, 5])], [("y", None)], {"slope": slope})
    lowered = lower(model, integer=True)
    model_bytes = to_tflite_bytes(lowered)
    assert verify_tflite(model, model_bytes, lowered, tolerance=1e-5).relative < 1e-6
    assert op_histogram(model_bytes) == expected


@pytest.mark.parametrize("axis,shape", [(1, (1, 5, 4, 3)), (-1, (1, 5, 4, 3)), (-1, (2, 7))])
def test_softmax(axis, shape):
    check([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], shape)


# ---------------------------------------------------------------- elementwise

BROADCASTS = {
    "channel-const": ((1, 4, 5, 6), (4, 1, 1)),
    "scalar-const": ((1, 4, 5, 6), ()),
    "width-const": ((1, 4, 5, 6), (6,)),
    "full-const": ((1, 4, 5, 6), (1, 4, 5, 6)),
    "2d": ((3, 7), (7,)),
}


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("case", BROADCASTS, ids=list(BROADCASTS))
def test_binary_broadcast_with_constant(op, case):
    x_shape, c_shape = BROADCASTS[case]
    constant = W(*c_shape, seed=3) if c_shape else np.array(0.7, np.float32)
    if op == "Div":
        constant = np.abs(constant) + 0.5
    histogram, _ = check([helper.make_node(op, ["x", "c"], ["y"])], x_shape, {"c": constant})
    assert "TRANSPOSE" not in histogram


def test_binary_between_nhwc_map_and_plain_tensor():
    # (1,4,5,6) map + a runtime (5,6) tensor: the plain operand is brought to NHWC
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "z"], ["y"])]
    check(nodes, None, inputs=[("x", [1, 4, 5, 6]), ("z", [5, 6])])


def test_squeeze_excitation_pattern():
    inits = {"w1": W(2, 4, 1, 1), "w2": W(4, 2, 1, 1, seed=3)}
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Conv", ["g", "w1"], ["s1"]),
        helper.make_node("Relu", ["s1"], ["s2"]),
        helper.make_node("Conv", ["s2", "w2"], ["s3"]),
        helper.make_node("HardSigmoid", ["s3"], ["s4"], alpha=1.0 / 6.0, beta=0.5),
        helper.make_node("Mul", ["x", "s4"], ["y"]),
    ]
    histogram, _ = check(nodes, (1, 4, 6, 6), inits)
    assert "TRANSPOSE" not in histogram


@pytest.mark.parametrize("op", ["Sqrt", "Exp", "Abs", "Neg", "Max", "Min"])
def test_unary_and_variadic(op):
    if op in ("Max", "Min"):
        nodes = [helper.make_node(op, ["x", "c"], ["y"])]
        check(nodes, (1, 3, 4, 4), {"c": W(3, 1, 1, seed=4)})
        return
    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node(op, ["a"], ["y"])]
    check(nodes, (1, 3, 4, 4))


# ---------------------------------------------------------------- linear


@pytest.mark.parametrize("trans_b,alpha,beta", [(1, 1.0, 1.0), (0, 0.5, 2.0)])
def test_gemm(trans_b, alpha, beta):
    weight = W(5, 7) if trans_b else W(7, 5)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=trans_b, alpha=alpha, beta=beta)]
    histogram, _ = check(nodes, (2, 7), {"w": weight, "b": W(5, seed=2)})
    assert histogram == {"FULLY_CONNECTED": 1}


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape"])
def test_flatten_of_spatial_map_permutes_gemm_weights(flatten):
    inits = {"w": W(6, 3, 3, 3), "fc": W(5, 6 * 4 * 4, seed=3), "fb": W(5, seed=4)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])]
    if flatten == "Flatten":
        nodes.append(helper.make_node("Flatten", ["c"], ["f"]))
    else:
        inits["shape"] = np.array([1, -1], np.int64)
        nodes.append(helper.make_node("Reshape", ["c", "shape"], ["f"]))
    nodes.append(helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1))
    histogram, _ = check(nodes, (1, 3, 4, 4), inits)
    assert "TRANSPOSE" not in histogram


def test_matmul_after_flatten_and_batched():
    inits = {"w": W(6 * 4 * 4, 5)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["y"]),
    ]
    histogram, _ = check(nodes, (1, 6, 4, 4), inits)
    assert "TRANSPOSE" not in histogram
    check([helper.make_node("MatMul", ["x", "w"], ["y"])], (2, 3, 8), {"w": W(8, 4)})


# ---------------------------------------------------------------- pooling

POOLS = {
    "max-k3-s2-p1": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "max-k2-s2-ceil": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "max-k3-s2-ceil-p1": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "max-k5-p2-asymmetric": ("MaxPool", dict(kernel_shape=[5, 5], strides=[2, 2], pads=[2, 1, 2, 0])),
    "max-same-upper": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    "avg-k2-s2": ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    "avg-k3-p1-exclude": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "avg-k3-p1-include": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)),
    "avg-k3-s2-ceil": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "avg-asymmetric": ("AveragePool", dict(kernel_shape=[2, 3], pads=[0, 1, 1, 0])),
    "global-avg": ("GlobalAveragePool", {}),
    "global-max": ("GlobalMaxPool", {}),
}


@pytest.mark.parametrize("case", POOLS, ids=list(POOLS))
def test_pool(case):
    op, attrs = POOLS[case]
    histogram, _ = check([helper.make_node(op, ["x"], ["y"], **attrs)], (1, 3, 9, 10))
    assert "TRANSPOSE" not in histogram
    assert "PADV2" not in histogram  # no -FLT_MAX padding constant to spoil int8 calibration ranges


@pytest.mark.parametrize(
    "op,axes,keepdims",
    [
        ("ReduceMean", [2, 3], 1),
        ("ReduceMean", [2, 3], 0),
        ("ReduceMean", [1], 0),
        ("ReduceMax", [1], 1),
        ("ReduceSum", [3], 0),
    ],
)
def test_reduce(op, axes, keepdims):
    opset = 18 if op != "ReduceMean" else 17
    if opset == 18:
        nodes = [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)]
        inits = {"axes": np.array(axes, np.int64)}
    else:
        nodes = [helper.make_node(op, ["x"], ["y"], axes=axes, keepdims=keepdims)]
        inits = {}
    check(nodes, (1, 4, 5, 6), inits, opset=opset)


# ---------------------------------------------------------------- shape ops


def test_channels_last_model_input_needs_no_transpose():
    # an ONNX graph taking NHWC and transposing to NCHW itself: with keep_nchw the Transpose disappears
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"]),
    ]
    histogram, lowered = check(nodes, (1, 5, 6, 3), {"w": W(4, 3, 3, 3)}, keep_nchw=True)
    assert "TRANSPOSE" not in histogram
    assert lowered.input_shapes == ((1, 5, 6, 3),)


@pytest.mark.parametrize("perm", [[0, 1, 3, 2], [0, 2, 1, 3], [1, 0, 2, 3]])
def test_transpose(perm):
    check([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Transpose", ["r"], ["y"], perm=perm)], (1, 3, 5, 6))


def test_transpose_2d():
    check([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])], (3, 5))


def test_reshape_to_3d_and_back():
    inits = {"s1": np.array([1, 4, 30], np.int64), "s2": np.array([1, 4, 5, 6], np.int64)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "s1"], ["t"]),
        helper.make_node("Softmax", ["t"], ["u"], axis=-1),
        helper.make_node("Reshape", ["u", "s2"], ["y"]),
    ]
    check(nodes, (1, 4, 5, 6), inits)


def test_channel_shuffle():
    inits = {"s1": np.array([1, 2, 3, 5, 6], np.int64), "s2": np.array([1, 6, 5, 6], np.int64)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "s1"], ["t"]),
        helper.make_node("Transpose", ["t"], ["u"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["u", "s2"], ["v"]),
        helper.make_node("Sigmoid", ["v"], ["y"]),
    ]
    histogram, _ = check(nodes, (1, 6, 5, 6), inits)
    # (pixels, A, B) -> (B, A, pixels) -> (pixels, C): two transposes XNNPACK delegates (a GATHER it would not)
    assert histogram["TRANSPOSE"] == 2 and "GATHER" not in histogram


def test_channel_shuffle_of_a_pooled_vector_is_shuffled():
    """The (N, A, B, 1, 1) -> (N, C) branch once skipped the permutation (and named an unbound variable)."""
    inits = {"s1": np.array([1, 2, 3, 1, 1], np.int64), "s2": np.array([1, 6], np.int64)}
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Reshape", ["g", "s1"], ["t"]),
        helper.make_node("Transpose", ["t"], ["u"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["u", "s2"], ["y"]),
    ]
    check(nodes, (1, 6, 5, 6), inits)  # verified against onnxruntime: a skipped shuffle fails here


def test_grouped_view_used_directly_is_materialized():
    inits = {"s1": np.array([1, 2, 3, 5, 6], np.int64)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "s1"], ["t"]),
        helper.make_node("Transpose", ["t"], ["u"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Sigmoid", ["u"], ["y"]),
    ]
    check(nodes, (1, 6, 5, 6), inits)


def test_squeeze_unsqueeze():
    inits = {"axes": np.array([2, 3], np.int64)}
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Squeeze", ["g", "axes"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "axes"], ["u"]),
        helper.make_node("Mul", ["x", "u"], ["y"]),
    ]
    histogram, _ = check(nodes, (1, 4, 5, 6), inits)
    assert "TRANSPOSE" not in histogram


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_concat(axis):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Sigmoid", ["x"], ["b"]),
        helper.make_node("Concat", ["a", "b"], ["y"], axis=axis),
    ]
    histogram, _ = check(nodes, (1, 3, 4, 5))
    assert "TRANSPOSE" not in histogram


@pytest.mark.parametrize("sizes", [None, [1, 3]])
def test_split(sizes):
    inits = {} if sizes is None else {"split": np.array(sizes, np.int64)}
    names = ["r"] if sizes is None else ["r", "split"]
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Split", names, ["y", "z"], axis=1),
        helper.make_node("Sigmoid", ["z"], ["zz"]),
    ]
    check(nodes, (1, 4, 5, 6), inits, outputs=("y", "zz"))


@pytest.mark.parametrize(
    "starts,ends,axes,steps",
    [
        ([1], [3], [1], [1]),
        ([0, 1], [4, 6], [2, 3], [2, 2]),
        ([-1], [-1000], [3], [-1]),
        ([2], [100], [2], [1]),
    ],
)
def test_slice(starts, ends, axes, steps):
    inits = {n: np.array(v, np.int64) for n, v in dict(s=starts, e=ends, a=axes, t=steps).items()}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Slice", ["r", "s", "e", "a", "t"], ["y"])]
    check(nodes, (1, 4, 5, 6), inits)


@pytest.mark.parametrize(
    "mode,pads",
    [
        ("constant", [0, 0, 1, 2, 0, 0, 2, 1]),
        ("reflect", [0, 0, 2, 1, 0, 0, 1, 2]),
        ("edge", [0, 0, 1, 1, 0, 0, 1, 1]),
        ("constant", [0, 1, 0, 0, 0, 2, 0, 0]),
    ],
)
def test_pad(mode, pads):
    inits = {"p": np.array(pads, np.int64), "v": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "p", "v"], ["y"], mode=mode)]
    check(nodes, (1, 3, 5, 6), inits)


def test_gather_channels():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "i"], ["y"], axis=1)]
    check(nodes, (1, 4, 5, 6), {"i": np.array([3, 0, -2], np.int64)})


def test_shape_gather_chain_is_constant_folded():
    # the dynamic flatten older exporters emit: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    inits = {"zero": np.array(0, np.int64), "ax": np.array([0], np.int64), "minus1": np.array([-1], np.int64), "fc": W(4 * 3 * 3, 2)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    histogram, _ = check(nodes, (1, 4, 3, 3), inits)
    assert "TRANSPOSE" not in histogram and "SHAPE" not in histogram


# ---------------------------------------------------------------- resize

RESIZES = {
    "nearest-asymmetric-floor-x2": (
        dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        [1, 1, 2, 2],
        None,
    ),
    "nearest-half-pixel-x2": (dict(mode="nearest"), [1, 1, 2, 2], None),
    "nearest-sizes-odd": (dict(mode="nearest", coordinate_transformation_mode="half_pixel"), None, [1, 3, 7, 11]),
    "linear-half-pixel-x2": (dict(mode="linear"), [1, 1, 2, 2], None),
    "linear-pytorch-half-pixel": (dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), [1, 1, 2, 3], None),
    "linear-align-corners": (dict(mode="linear", coordinate_transformation_mode="align_corners"), None, [1, 3, 9, 13]),
    "linear-asymmetric": (dict(mode="linear", coordinate_transformation_mode="asymmetric"), [1, 1, 2, 2], None),
    "linear-downsample": (dict(mode="linear"), [1, 1, 0.5, 0.5], None),
}


@pytest.mark.parametrize("case", RESIZES, ids=list(RESIZES))
def test_resize(case):
    attrs, scales, sizes = RESIZES[case]
    inits = {"roi": np.array([], np.float32)}
    names = ["x", "roi"]
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        names.append("scales")
    else:
        inits["sizes"] = np.array(sizes, np.int64)
        names += ["", "sizes"]
    histogram, _ = check([helper.make_node("Resize", names, ["y"], **attrs)], (1, 3, 4, 6), inits)
    assert "TRANSPOSE" not in histogram


# ---------------------------------------------------------------- normalization, legacy ops


@pytest.mark.parametrize("axis,shape", [(-1, (2, 5, 8)), (1, (1, 4, 3, 5)), (-1, (1, 4, 3, 5))])
def test_layer_normalization(axis, shape):
    params = shape[axis % len(shape) :]
    inits = {"s": W(*params, seed=3) + 1.0, "b": W(*params, seed=4)}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("LayerNormalization", ["r", "s", "b"], ["y"], axis=axis, epsilon=1e-5),
    ]
    histogram, _ = check(nodes, shape, inits)
    if axis == 1:
        assert "TRANSPOSE" not in histogram


def test_batchnorm_on_features():
    inits = {"s": W(6, seed=3) + 1.0, "bb": W(6, seed=4), "m": W(6, seed=5), "v": np.abs(W(6, seed=6)) + 0.5}
    check([helper.make_node("BatchNormalization", ["x", "s", "bb", "m", "v"], ["y"])], (3, 6), inits)


def test_upsample_opset9():
    nodes = [helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")]
    histogram, _ = check(nodes, (1, 3, 4, 5), {"scales": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    # an integer-factor nearest upsample is exact copies that XNNPACK delegates (it leaves RESIZE_NEAREST_NEIGHBOR out)
    assert histogram == {"RESHAPE": 3, "CONCATENATION": 2}


# ---------------------------------------------------------------- int8 forms (lower(integer=True))


@pytest.mark.parametrize(
    "op,const_first,shape",
    [("Add", False, (1,)), ("Add", True, (1, 4, 1, 1)), ("Sub", False, (1,)), ("Sub", True, (1, 4, 1, 1))],
)
def test_integer_bias_forms_are_exact_and_one_depthwise(op, const_first, shape):
    """For int8, x + c / x - c / c - x (c scalar or per channel) is a 1x1 DEPTHWISE_CONV_2D with weight +-1 and
    the constant as bias: exact in float, and XNNPACK runs it in int8 where a wide-range ADD was refused."""
    from edgesep.convert.lowering import has_integer_forms, lower
    from edgesep.convert.tflite import to_tflite_bytes
    from edgesep.convert.tflite_inspect import op_histogram
    from edgesep.convert.verify import verify_tflite

    c = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    inputs = ["c", "r"] if const_first else ["r", "c"]
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, inputs, ["y"])]
    model = make_model(nodes, [("x", [1, 4, 6, 6])], [("y", None)], {"c": c})
    assert has_integer_forms(model)
    lowered = lower(model, integer=True)
    model_bytes = to_tflite_bytes(lowered)
    assert verify_tflite(model, model_bytes, lowered, tolerance=1e-6).relative < 1e-6
    assert op_histogram(model_bytes) == {"DEPTHWISE_CONV_2D": 1, "RELU": 1}


def test_paddle_hardswish_pattern_is_one_hardswish():
    """Paddle2ONNX's x * clip(x + 3, 0, 6) / 6 lowers as one HardSwish: HARD_SWISH in float (was ADD, MUL, MUL)."""
    from edgesep.convert.fusions import fuse_hardswish

    inits = {"three": np.array(3.0, np.float32), "zero": np.array(0.0, np.float32), "six": np.array(6.0, np.float32),
             "div": np.array(6.0, np.float32)}  # fmt: skip
    nodes = [helper.make_node("Add", ["x", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
             helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Div", ["m", "div"], ["y"])]  # fmt: skip
    histogram, _ = check(nodes, (1, 4, 5, 6), inits)
    assert histogram == {"HARD_SWISH": 1}
    model = make_model(nodes, [("x", [1, 4, 5, 6])], [("y", None)], inits)
    assert fuse_hardswish(model) == 1 and [n.op_type for n in model.graph.node] == ["HardSwish"]
    shared = make_model(nodes + [helper.make_node("Relu", ["a"], ["z"])], [("x", [1, 4, 5, 6])], [("y", None), ("z", None)], inits)
    assert fuse_hardswish(shared) == 0  # the x + 3 tensor has another reader: left as it is


@pytest.mark.parametrize("case", [c for c in POOLS if c.startswith("avg")] + ["avg-k3x2-s3x2"])
def test_integer_average_pool_is_one_depthwise_matching_onnxruntime(case):
    """For int8, AveragePool is a DEPTHWISE_CONV_2D with weights 1 / (kh * kw) (XNNPACK has no int8
    AVERAGE_POOL_2D): the same numbers as onnxruntime in float, padded windows included, and no pool op."""
    from edgesep.convert.lowering import has_integer_forms, lower
    from edgesep.convert.tflite import to_tflite_bytes
    from edgesep.convert.tflite_inspect import op_histogram
    from edgesep.convert.verify import verify_tflite

    attrs = dict(kernel_shape=[3, 2], strides=[3, 2]) if case == "avg-k3x2-s3x2" else POOLS[case][1]  # PP-OCRv5 rec's
    model = make_model([helper.make_node("AveragePool", ["x"], ["y"], **attrs)], [("x", [1, 3, 9, 10])], [("y", None)])
    assert has_integer_forms(model)
    lowered = lower(model, integer=True)
    model_bytes = to_tflite_bytes(lowered)
    assert verify_tflite(model, model_bytes, lowered, tolerance=1e-5).relative < 1e-6
    histogram = op_histogram(model_bytes)
    assert histogram.get("DEPTHWISE_CONV_2D") == 1 and "AVERAGE_POOL_2D" not in histogram, histogram
