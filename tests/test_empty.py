"""Tensors with a size-0 axis: every op gives what numpy and PyTorch give, and gradients flow.

Reductions over an empty axis follow PyTorch: the sum is 0, the mean nan
(0/0), logsumexp -inf (log 0), softmax and log_softmax are empty, and max/min
raise.  A reduction over a non-empty axis of an empty tensor is empty.
Backward gives gradients of the input's (empty) shape; wherever an empty
tensor meets a non-empty one, gradcheck compares with finite differences.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, gradcheck, gradgradcheck
from chainrule.nn import functional as F

# (shape, axis): axes of size 0, and non-empty axes of empty tensors.
EMPTY_REDUCTIONS = [
    ((3, 0), 1),
    ((3, 0), 0),
    ((0, 4), 0),
    ((0, 4), -1),
    ((3, 0), None),
    ((2, 0, 3), (1,)),
    ((2, 0, 3), (0, 2)),
    ((0,), 0),
]

# What a reduction over no numbers is: the value numpy's own functions give.
IDENTITIES = {"sum": 0.0, "mean": np.nan, "logsumexp": -np.inf}


def _empty(shape, dtype=np.float64):
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=True)


def _silently(fn):
    """Run fn with every warning an error: no op here may warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), EMPTY_REDUCTIONS)
@pytest.mark.parametrize("op", ["sum", "mean", "logsumexp"])
def test_reduction_of_an_empty_tensor(op, shape, axis, keepdims):
    x = _empty(shape)
    out = _silently(lambda: getattr(x, op)(axis=axis, keepdims=keepdims))
    # The result has numpy's reduced shape, filled with the reduction of no numbers.
    expected_shape = np.sum(x.data, axis=axis, keepdims=keepdims).shape
    np.testing.assert_array_equal(out.data, np.full(expected_shape, IDENTITIES[op]))
    assert out.dtype == x.dtype
    _silently(lambda: out.sum().backward())
    assert x.grad.shape == shape
    assert x.grad.dtype == x.dtype


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize(("shape", "axis"), [((3, 0), 1), ((3, 0), 0), ((0,), 0), ((2, 0, 3), 2)])
def test_softmax_of_an_empty_tensor_is_empty(op, shape, axis):
    x = _empty(shape)
    out = _silently(lambda: getattr(x, op)(axis=axis))
    assert out.shape == shape
    _silently(lambda: out.sum().backward())
    assert x.grad.shape == shape


def test_float32_stays_float32_over_an_empty_axis():
    x = _empty((2, 0), np.float32)
    for op in ("sum", "mean", "logsumexp"):
        assert getattr(x, op)(axis=1).dtype == np.float32
    assert x.softmax(1).dtype == np.float32


def test_mean_over_an_empty_axis_matches_numpy():
    data = np.zeros((3, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about the empty slices; chainrule does not
        expected = data.mean(axis=1)
    np.testing.assert_array_equal(_silently(lambda: Tensor(data).mean(axis=1)).data, expected)


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize(("shape", "axis"), [((3, 0), 1), ((3, 0), None), ((0,), 0)])
def test_max_min_over_an_empty_axis_raise(op, shape, axis):
    x = _empty(shape)
    with pytest.raises(ValueError, match=rf"{op}: .*{re.escape(str(shape))}.*empty"):
        getattr(x, op)(axis=axis)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_over_a_non_empty_axis_of_an_empty_tensor(op):
    x = _empty((3, 0))
    out = getattr(x, op)(axis=0)
    assert out.shape == (0,)
    out.sum().backward()
    assert x.grad.shape == (3, 0)


def test_empty_reductions_feed_gradients_to_non_empty_inputs(make):
    """Where an empty tensor meets a non-empty one, both gradients are right."""
    x = make.uniform((3, 2))
    e = make.uniform((3, 0))

    def f(x, e):
        wide = cr.concatenate([x, e], axis=1)  # (3, 2): the empty part adds nothing
        return (
            wide.softmax(1) * 2.0
            + wide.log_softmax(1)
            + e.sum(1, keepdims=True)  # zeros
            + (e @ e.T)[:, :2]  # zero inner dimension: zeros
            + x * e.mean(0).sum()  # the sum of an empty result is 0
            + e.logsumexp(0).sum()
        )

    assert gradcheck(f, [x, e])
    assert gradgradcheck(f, [x, e])


def test_gradients_of_empty_reductions_to_second_order():
    x = _empty((3, 0))
    for op in ("sum", "mean", "logsumexp"):
        (g,) = cr.grad(getattr(x, op)(axis=1).sum(), [x], create_graph=True)
        assert g.shape == (3, 0)
    for op in ("softmax", "log_softmax"):
        (g,) = cr.grad(getattr(x, op)(axis=1).sum(), [x], create_graph=True)
        assert g.shape == (3, 0)


# ---------------------------------------------------------------------------
# Other ops on empty tensors
# ---------------------------------------------------------------------------

EMPTY_OPS = [
    pytest.param(lambda e: e + 1.0, (3, 0), id="add-number"),
    pytest.param(lambda e: e * Tensor(np.ones((3, 1))), (3, 0), id="mul-broadcast"),
    pytest.param(lambda e: (e - e) / (e + 2.0), (3, 0), id="sub-div"),
    pytest.param(lambda e: (e**2.0).exp().tanh().sigmoid(), (3, 0), id="elementwise"),
    pytest.param(lambda e: e @ Tensor(np.ones((0, 2))), (3, 0), id="matmul-zero-inner"),
    pytest.param(lambda e: Tensor(np.ones((2, 3))) @ e, (3, 0), id="matmul-zero-columns"),
    pytest.param(lambda e: e.reshape(0, 3), (3, 0), id="reshape"),
    pytest.param(lambda e: e.T, (3, 0), id="transpose"),
    pytest.param(lambda e: e[1:, :], (3, 0), id="slice"),
    pytest.param(lambda e: e[[0, 2]], (3, 0), id="list-index"),
    pytest.param(lambda e: cr.stack([e, e]), (3, 0), id="stack"),
    pytest.param(lambda e: cr.where(e.data > 0, e, 1.0), (3, 0), id="where"),
    pytest.param(lambda e: e.broadcast_to((2, 3, 0)), (3, 0), id="broadcast_to"),
]


@pytest.mark.parametrize(("fn", "shape"), EMPTY_OPS)
def test_ops_on_empty_tensors(fn, shape):
    e = _empty(shape)
    out = _silently(lambda: fn(e))
    expected = fn(Tensor(np.zeros(shape))).data  # the same op without a graph
    assert out.shape == expected.shape
    _silently(lambda: out.sum().backward())
    np.testing.assert_array_equal(e.grad, np.zeros(shape))


def test_matmul_with_a_zero_inner_dimension_is_zeros(make):
    a, b = make.uniform((2, 0)), make.uniform((0, 3))
    out = a @ b
    np.testing.assert_array_equal(out.data, np.zeros((2, 3)))
    out.backward(make.array((2, 3)))
    assert a.grad.shape == (2, 0) and b.grad.shape == (0, 3)


def test_concatenate_with_an_empty_part(make):
    x, e = make.uniform((2, 3)), make.uniform((0, 3))
    np.testing.assert_array_equal(cr.concatenate([e, x, e]).data, x.data)
    assert gradcheck(lambda x, e: cr.concatenate([e, x, e]) * x, [x, e])


@pytest.mark.parametrize(
    ("reduction", "value"), [("mean", np.nan), ("sum", 0.0), ("none", np.zeros(0))]
)
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_classification_losses_with_no_samples(loss, reduction, value):
    """As PyTorch: the mean over no samples is nan, the sum 0, 'none' empty."""
    x = _empty((0, 3))
    out = _silently(lambda: loss(x, np.zeros(0, dtype=int), reduction=reduction))
    np.testing.assert_array_equal(out.data, value)
    _silently(lambda: out.sum().backward())
    assert x.grad.shape == (0, 3)
