"""Floating-point precision: float32 stays float32, and agrees with float64.

A float32 tensor is computed in float32 from end to end: its ops, its
gradients and its second derivatives.  Python floats and lists of them
adopt the tensor's precision; on their own they make float64 tensors.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor

# float32 has a 24-bit mantissa (about 6e-8 relative); a handful of roundings
# per op stays well inside these tolerances.
RTOL32, ATOL32 = 2e-5, 1e-6

OPS = [
    pytest.param(lambda x, y: x + y, id="add"),
    pytest.param(lambda x, y: x - 2.5 * y, id="sub"),
    pytest.param(lambda x, y: x * y, id="mul"),
    pytest.param(lambda x, y: x / (y * y + 1.0), id="div"),
    pytest.param(lambda x, y: (x * x + 0.5) ** y, id="pow"),
    pytest.param(lambda x, y: x**2 + 3.0**y - 1.0 / (y * y + 1.0), id="pow-numbers"),
    pytest.param(lambda x, y: -x, id="neg"),
    pytest.param(lambda x, y: x.exp(), id="exp"),
    pytest.param(lambda x, y: (x * x + 0.1).log(), id="log"),
    pytest.param(lambda x, y: x.tanh(), id="tanh"),
    pytest.param(lambda x, y: x.sigmoid(), id="sigmoid"),
    pytest.param(lambda x, y: x.relu() * y, id="relu"),
    pytest.param(lambda x, y: x.abs() * y, id="abs"),
    pytest.param(lambda x, y: (x * x + 0.1).sqrt(), id="sqrt"),
    pytest.param(lambda x, y: x.clip(-0.5, 0.5) * y, id="clip"),
    pytest.param(lambda x, y: cr.maximum(x, y) + cr.minimum(x, 0.25), id="maximum"),
    pytest.param(lambda x, y: cr.where(x.data > 0, x, y * y), id="where"),
    pytest.param(lambda x, y: x.sum(axis=1) * y.mean(), id="sum-mean"),
    pytest.param(lambda x, y: x.max(axis=0) - y.min(dim=1, keepdims=True), id="max-min"),
    pytest.param(lambda x, y: x @ y.T, id="matmul"),
    pytest.param(lambda x, y: x.softmax(axis=1) * y, id="softmax"),
    pytest.param(lambda x, y: x.log_softmax(axis=0) * y, id="log_softmax"),
    pytest.param(lambda x, y: x.logsumexp(axis=1), id="logsumexp"),
    pytest.param(lambda x, y: x.reshape(4, 3).T * y, id="reshape-T"),
    pytest.param(lambda x, y: x[[0, 0, 2], 1:] * y[:, 1:], id="getitem"),
    pytest.param(lambda x, y: cr.concatenate([x, y], axis=0), id="concatenate"),
    pytest.param(lambda x, y: cr.stack([x, y], axis=1), id="stack"),
    pytest.param(lambda x, y: x[0].broadcast_to((2, 4)) * y[:2], id="broadcast_to"),
    pytest.param(lambda x, y: x * [1.5, -0.5, 2.0, 1.0] + np.float32(0.5), id="list-constant"),
]


def _pairs(make):
    """Two float32 inputs, and the same numbers in float64, so only the precision differs."""
    x32 = Tensor(make.array((3, 4)), dtype=np.float32, requires_grad=True)
    y32 = Tensor(make.array((3, 4)), dtype=np.float32, requires_grad=True)
    x64 = Tensor(x32.data.astype(np.float64), requires_grad=True)
    y64 = Tensor(y32.data.astype(np.float64), requires_grad=True)
    return x32, y32, x64, y64


@pytest.mark.parametrize("fn", OPS)
def test_float32_forward_matches_float64(make, fn):
    x32, y32, x64, y64 = _pairs(make)
    out32, out64 = fn(x32, y32), fn(x64, y64)
    assert out32.dtype == np.float32
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out32.data, out64.data, rtol=RTOL32, atol=ATOL32)


@pytest.mark.parametrize("fn", OPS)
def test_float32_gradients_stay_float32_and_match_float64(make, fn):
    x32, y32, x64, y64 = _pairs(make)
    out32, out64 = fn(x32, y32), fn(x64, y64)
    seed = make.array(out32.shape)
    out32.backward(seed.astype(np.float32))
    out64.backward(seed)
    for a32, a64 in ((x32, x64), (y32, y64)):
        if a64.grad is None:  # the op did not use this input
            assert a32.grad is None
            continue
        assert a32.grad.dtype == np.float32
        assert a32.grad.shape == a32.shape
        np.testing.assert_allclose(a32.grad, a64.grad, rtol=RTOL32, atol=10 * ATOL32)
    assert out32.grad.dtype == np.float32


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x: x.tanh(), id="tanh"),
        pytest.param(lambda x: x.sigmoid(), id="sigmoid"),
        pytest.param(lambda x: x.exp(), id="exp"),
        pytest.param(lambda x: (x * x + 1.0).log(), id="log"),
        pytest.param(lambda x: (x * x + 1.0) ** 1.5, id="pow"),
        pytest.param(lambda x: x.softmax(axis=0) * x, id="softmax"),
        pytest.param(lambda x: x.logsumexp() * x, id="logsumexp"),
    ],
)
def test_float32_second_derivatives_stay_float32(make, fn):
    x32 = Tensor(make.array((4,)), dtype=np.float32, requires_grad=True)
    x64 = Tensor(x32.data.astype(np.float64), requires_grad=True)
    hessian_diag = []
    for x in (x32, x64):
        (g,) = cr.grad(fn(x).sum(), x, create_graph=True)
        assert g.dtype == x.dtype
        (h,) = cr.grad(g.sum(), x)
        assert h.dtype == x.dtype
        hessian_diag.append(h.data)
    np.testing.assert_allclose(hessian_diag[0], hessian_diag[1], rtol=1e-4, atol=1e-5)


def test_python_numbers_make_float64_and_keep_float32():
    assert Tensor(1.5).dtype == np.float64
    assert Tensor([1.0, 2.0]).dtype == np.float64
    assert cr.tensor([[0.5]], requires_grad=True).dtype == np.float64
    assert Tensor(np.float32(1.5)).dtype == np.float32
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert Tensor([1.0], dtype=np.float32).dtype == np.float32
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    # Python floats and lists of them adopt the tensor's precision on either side.
    results = [
        x + 1.5,
        2.5 * x,
        1.0 / x,
        x**2.0,
        2.0**x,
        x - [1.0, 2.0, 3.0],
        [1.0, 2.0, 3.0] * x,
        x @ [1.0, 2.0, 3.0],
        cr.where([True, False, True], x, 0.5),
        cr.maximum(x, 0.5),
        cr.concatenate([x, [4.0]]),
    ]
    assert [r.dtype for r in results] == [np.float32] * len(results)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param([1, 2, 3], id="int-list"),
        pytest.param([[1], [2]], id="int-list-2d"),
        pytest.param(np.array([1, 2, 3]), id="int64-array"),
        pytest.param(np.array([1, 2, 3], dtype=np.uint8), id="uint8-array"),
        pytest.param(np.int64(2), id="int64-scalar"),
        pytest.param(3, id="python-int"),
    ],
)
def test_integers_never_widen_a_float32_tensor(make, other):
    x = Tensor(make.array((3,)), dtype=np.float32, requires_grad=True)
    results = [x * other, other + x, x - other, other / (x * x + 1.0), x**other]
    assert [r.dtype for r in results] == [np.float32] * len(results)
    expected = x.data.astype(np.float64) * np.asarray(other, dtype=np.float64)
    np.testing.assert_allclose((x * other).data, expected, rtol=1e-7)
    sum(r.sum() for r in results).backward()
    assert x.grad.dtype == np.float32


def test_mixing_float32_with_float64_promotes_but_grads_keep_each_dtype(make):
    a = Tensor(make.array((2, 3)), dtype=np.float32, requires_grad=True)
    b = Tensor(make.array((3,)), requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32
    assert b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad, np.broadcast_to(b.data, (2, 3)), rtol=1e-7)
    np.testing.assert_allclose(b.grad, a.data.astype(np.float64).sum(axis=0))


def test_astype_round_trip_gradient_dtypes(make):
    x = Tensor(make.array((2, 3)), dtype=np.float32, requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    z = (y * y).astype(np.float32)
    assert z.dtype == np.float32
    z.sum().backward()
    assert x.grad.dtype == np.float32
    assert y.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-7)


# Underflow to 0 is the correct float answer for exp(-200); overflow, division
# by zero and invalid operations are what instability would look like.
def test_float32_softmax_family_is_stable_where_exp_overflows():
    # exp(100) overflows float32 (max about 3.4e38), so these need the shift by the max.
    x = Tensor([[100.0, 100.0], [100.0, -100.0]], dtype=np.float32, requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        lse = x.logsumexp(axis=1)
        sm = x.softmax(axis=1)
        ls = x.log_softmax(axis=1)
        (lse.sum() + (sm * sm).sum() + ls.sum()).backward()
    assert lse.dtype == sm.dtype == ls.dtype == x.grad.dtype == np.float32
    np.testing.assert_allclose(lse.data, [100 + np.log(2), 100], rtol=1e-6)
    np.testing.assert_allclose(sm.data, [[0.5, 0.5], [1.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(ls.data, [[-np.log(2), -np.log(2)], [0.0, -200.0]], rtol=1e-6)
    assert np.isfinite(x.grad).all()


def test_float32_sigmoid_tanh_at_extremes_without_warnings():
    x = Tensor([-1000.0, -80.0, 0.0, 80.0, 1000.0], dtype=np.float32, requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s, t = x.sigmoid(), x.tanh()
        (s + t).sum().backward()
    assert s.dtype == t.dtype == x.grad.dtype == np.float32
    np.testing.assert_array_equal(s.data[[0, 2, 4]], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(t.data[[0, 2, 4]], [-1.0, 0.0, 1.0])
    assert np.isfinite(x.grad).all()


def test_gradcheck_refuses_float32_inputs():
    x = Tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        cr.gradcheck(lambda x: x * x, [x])
