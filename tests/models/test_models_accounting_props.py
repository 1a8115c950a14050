"""Property test: for any separable block the accounting equals the closed forms exactly."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from edgesep.models.accounting import count_module
from edgesep.models.blocks import DepthwiseSeparableConv2d


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    c=st.integers(2, 12),
    m=st.integers(1, 12),
    k=st.sampled_from([1, 3, 5, 7]),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    size=st.integers(13, 20),
    batch=st.integers(1, 3),
    batch_norm=st.booleans(),
)
def test_block_accounting_equals_closed_forms(c, m, k, stride, dilation, size, batch, batch_norm):
    block = DepthwiseSeparableConv2d(c, m, kernel_size=k, stride=stride, dilation=dilation, batch_norm=batch_norm)
    acc = count_module(block, (batch, c, size, size))
    pad = dilation * (k - 1) // 2
    out = (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    extra = 2 * c + 2 * m if batch_norm else c + m  # BN (gamma, beta) or conv biases
    assert acc.total_params == k * k * c + c * m + extra
    assert acc.total_macs == (k * k * c + c * m) * out * out * batch
    (pair,) = acc.pairs
    assert pair.output_hw == (out, out)
    assert (pair.standard_params, pair.standard_macs) == (k * k * c * m, k * k * c * m * out * out * batch)
    assert pair.exact_ratio == Fraction(1, m) + Fraction(1, k * k)
