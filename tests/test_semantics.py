"""The edge-case semantics described in docs/semantics.md, each computed here.

Every statement that page makes about chainrule's behaviour (non-finite
gradients through masks, ties and NaN in reductions, BCE at 0 and 1, dtype
promotion with numpy scalars, ``Value == Value``) is checked by a test in
this file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import Tensor, Value

INF, NAN = math.inf, math.nan


def _leaf(data, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(data, dtype=dtype), requires_grad=True)


def _grads(fn, inputs, seed):
    """Gradients of ``fn(*inputs)`` with the given incoming gradient ``seed``."""
    out = fn(*inputs)
    gs = cr.grad(out, list(inputs), grad_outputs=np.asarray(seed, dtype=np.float64))
    return [g.data for g in gs]


# ---------------------------------------------------------------------------
# inf and nan arriving from upstream: masks select, they do not multiply.
# ---------------------------------------------------------------------------


def test_relu_selects_the_incoming_gradient():
    (g,) = _grads(lambda x: x.relu(), [_leaf([-1.0, 0.0, 2.0, 3.0])], [INF, NAN, INF, NAN])
    np.testing.assert_array_equal(g, [0.0, 0.0, INF, NAN])


def test_relu_of_nan_passes_the_gradient_through():
    # relu(nan) is nan, and nan <= 0 is false: the element counts as active.
    x = _leaf([NAN, -1.0])
    y = x.relu()
    assert np.isnan(y.data[0])
    (g,) = cr.grad(y, [x], grad_outputs=np.array([2.0, 2.0]))
    np.testing.assert_array_equal(g.data, [2.0, 0.0])


def test_value_relu_selects_the_incoming_gradient():
    for x, want in ((-1.0, 0.0), (0.0, 0.0), (2.0, INF)):
        v = Value(x)
        (g,) = cr.grad(v.relu(), [v], grad_outputs=INF)
        assert g.data == want


def test_value_relu_selects_under_create_graph():
    v = Value(-1.0)
    (g,) = cr.grad(v.relu(), [v], grad_outputs=Value(INF, requires_grad=False), create_graph=True)
    assert g.data == 0.0


def test_clip_selects_the_incoming_gradient():
    x = _leaf([-1.0, 0.5, 2.0, 0.0, 1.0, NAN])
    (g,) = _grads(lambda x: x.clip(0.0, 1.0), [x], [INF, NAN, -INF, 5.0, 6.0, 7.0])
    # Inside [lo, hi] (ends included) the gradient passes; outside, and at nan, it is 0.
    np.testing.assert_array_equal(g, [0.0, NAN, 0.0, 5.0, 6.0, 0.0])


@pytest.mark.parametrize(("fn", "larger"), [(cr.maximum, True), (cr.minimum, False)])
def test_maximum_and_minimum_select_and_halve_ties(fn, larger):
    a = _leaf([-1.0, 2.0, 1.0, NAN])
    b = _leaf([0.0, 0.0, 1.0, 1.0])
    ga, gb = _grads(fn, [a, b], [INF, INF, INF, 4.0])
    win_a, win_b = [0.0, INF], [INF, 0.0]
    if not larger:
        win_a, win_b = win_b, win_a
    # Winner gets all, loser 0 (not inf * 0 = nan), a tie halves, nan gives both all.
    np.testing.assert_array_equal(ga, [*win_a, INF, 4.0])
    np.testing.assert_array_equal(gb, [*win_b, INF, 4.0])


def test_max_reduction_selects_the_incoming_gradient():
    x = _leaf([[1.0, 3.0, 2.0], [5.0, 4.0, 4.0]])
    (g,) = _grads(lambda x: x.max(axis=1), [x], [INF, NAN])
    np.testing.assert_array_equal(g, [[0.0, INF, 0.0], [NAN, 0.0, 0.0]])
    (g,) = _grads(lambda x: x.min(axis=1), [x], [-INF, 1.0])
    np.testing.assert_array_equal(g, [[-INF, 0.0, 0.0], [0.0, 0.5, 0.5]])


def test_where_selects_the_incoming_gradient():
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    ga, gb = _grads(lambda a, b: cr.where(np.array([True, False]), a, b), [a, b], [INF, NAN])
    np.testing.assert_array_equal(ga, [INF, 0.0])
    np.testing.assert_array_equal(gb, [0.0, NAN])


def test_abs_multiplies_by_the_sign_as_pytorch_does():
    (g,) = _grads(lambda x: x.abs(), [_leaf([-1.0, 0.0, 2.0, 0.0])], [INF, INF, NAN, 1.0])
    np.testing.assert_array_equal(g, [-INF, NAN, NAN, 0.0])


def test_finite_gradients_are_unchanged_by_selection():
    rng = np.random.default_rng(0)
    for shape_a, shape_b in (((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3))):
        a = _leaf(np.round(rng.uniform(-2, 2, shape_a), 1))
        b = _leaf(np.round(rng.uniform(-2, 2, shape_b), 1))
        for fn in (cr.maximum, cr.minimum):
            cr.gradcheck(lambda a, b, fn=fn: fn(a, b + 0.05), [a, b])
        cr.gradcheck(lambda a: (a + 0.05).relu() + (a + 0.05).clip(-1.0, 1.0), [a])


# ---------------------------------------------------------------------------
# Ties in max.
# ---------------------------------------------------------------------------


def test_full_max_splits_ties_evenly():
    x = _leaf([1.0, 3.0, 3.0, 3.0])
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-15)


def test_max_over_an_axis_splits_ties_evenly():
    x = _leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
    y = _leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    y.min(axis=0, keepdims=True).sum().backward()
    np.testing.assert_array_equal(y.grad, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])


def test_maximum_and_minimum_split_a_tie_in_half():
    a, b = _leaf([2.0]), _leaf([2.0])
    for fn in (cr.maximum, cr.minimum):
        ga, gb = _grads(fn, [a, b], [1.0])
        assert (ga[0], gb[0]) == (0.5, 0.5)


# ---------------------------------------------------------------------------
# NaN in reductions.
# ---------------------------------------------------------------------------


def test_max_with_nan_is_nan_and_its_gradient_goes_to_the_nans():
    x = _leaf([1.0, NAN, 3.0, NAN])
    y = x.max()
    assert np.isnan(y.item())
    y.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.0, 0.5])
    r = _leaf([[1.0, NAN, 3.0], [1.0, 2.0, 3.0]])
    m = r.max(axis=1)
    assert np.isnan(m.data[0]) and m.data[1] == 3.0
    m.sum().backward()
    np.testing.assert_array_equal(r.grad, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_sum_and_mean_with_nan_are_nan_with_ordinary_gradients():
    x = _leaf([1.0, NAN, 3.0, 4.0])
    s, m = x.sum(), x.mean()
    assert np.isnan(s.item()) and np.isnan(m.item())
    (gs,) = cr.grad(s, [x])
    (gm,) = cr.grad(m, [x])
    np.testing.assert_array_equal(gs.data, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(gm.data, [0.25, 0.25, 0.25, 0.25])


def test_logsumexp_with_nan_is_nan_with_a_nan_gradient_on_its_row_only():
    x = _leaf([[1.0, NAN], [0.0, 0.0]])
    y = x.logsumexp(axis=1)
    assert np.isnan(y.data[0]) and y.data[1] == pytest.approx(math.log(2.0), rel=1e-15)
    y.sum().backward()
    assert np.isnan(x.grad[0]).all()
    np.testing.assert_array_equal(x.grad[1], [0.5, 0.5])


# ---------------------------------------------------------------------------
# Binary cross-entropy at p = 0 and p = 1.
# ---------------------------------------------------------------------------


def test_bce_clamps_each_log_at_minus_100():
    p = _leaf([0.0, 1.0, 0.0, 1.0, 1e-60])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    loss = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_array_equal(loss.data, [100.0, 100.0, 0.0, 0.0, 100.0])


def test_bce_gradient_at_the_ends_is_the_one_sided_slope_of_the_loss():
    p = _leaf([0.0, 0.0])
    y = np.array([1.0, 0.0])
    F.binary_cross_entropy(p, y, reduction="sum").backward()
    # A log clamped at -100 is flat for p < e^-100 (about 3.7e-44); an unclamped
    # -log(1 - p) has slope 1 at 0.  One-sided differences inside [0, 1]:
    h = np.array([1e-50, 1e-7])

    def each(q):
        return F.binary_cross_entropy(Tensor(q), y, reduction="none").data

    slope = (each(p.data + h) - each(p.data)) / h
    np.testing.assert_allclose(p.grad, slope, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(p.grad, [0.0, 1.0])
    # At p = 1 the loss mirrors p = 0: BCE(p, y) = BCE(1 - p, 1 - y).
    q = _leaf([1.0, 1.0])
    F.binary_cross_entropy(q, 1.0 - y, reduction="sum").backward()
    np.testing.assert_array_equal(q.grad, -p.grad)


def test_bce_of_a_saturated_sigmoid_has_the_exact_logit_gradient():
    # p = sigmoid(z) = 8.8e-27 for z = -60: dL/dz must still be p - y.
    z = _leaf([-60.0, -30.0, 2.0])
    y = np.array([1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy(z.sigmoid(), y, reduction="sum")
    (g,) = cr.grad(loss, [z])
    p = 1.0 / (1.0 + np.exp(-z.data))
    np.testing.assert_allclose(g.data, p - y, rtol=1e-9)
    (gl,) = cr.grad(F.binary_cross_entropy_with_logits(z, y, reduction="sum"), [z])
    np.testing.assert_allclose(g.data, gl.data, rtol=1e-9)


def test_bce_of_a_sigmoid_rounded_to_one_has_no_gradient_but_with_logits_does():
    z = _leaf([40.0])
    p = z.sigmoid()
    assert p.item() == 1.0  # sigmoid(40) = 1 - 4e-18 rounds to 1
    (g,) = cr.grad(F.binary_cross_entropy(p, np.array([0.0])), [z])
    assert g.item() == 0.0
    (gl,) = cr.grad(F.binary_cross_entropy_with_logits(z, np.array([0.0])), [z])
    assert gl.item() == pytest.approx(1.0, rel=1e-15)


# ---------------------------------------------------------------------------
# dtype: numpy scalars do not widen a float32 tensor.
# ---------------------------------------------------------------------------

SCALARS = [
    pytest.param(np.float64(2.0), id="np.float64"),
    pytest.param(np.array(2.0), id="0-d float64 array"),
    pytest.param(np.float16(2.0), id="np.float16"),
    pytest.param(np.int64(2), id="np.int64"),
    pytest.param(2.0, id="float"),
    pytest.param(2, id="int"),
]


@pytest.mark.parametrize("s", SCALARS)
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda t, s: t * s, id="mul"),
        pytest.param(lambda t, s: s * t, id="rmul"),
        pytest.param(lambda t, s: t + s, id="add"),
        pytest.param(lambda t, s: s - t, id="rsub"),
        pytest.param(lambda t, s: t / s, id="div"),
        pytest.param(lambda t, s: t**s, id="pow"),
        pytest.param(lambda t, s: cr.maximum(t, s), id="maximum"),
        pytest.param(lambda t, s: cr.where(t.data > 1.5, t, s), id="where"),
    ],
)
def test_a_scalar_keeps_a_float32_tensor_float32(op, s):
    t = _leaf([1.0, 2.0, 3.0], dtype=np.float32)
    out = op(t, s)
    assert out.dtype == np.float32
    ref = op(Tensor(t.data.astype(np.float64)), float(s))
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-6)
    out.sum().backward()
    assert t.grad.dtype == np.float32


def test_arrays_with_dimensions_and_float64_tensors_promote_as_numpy_does():
    t32 = Tensor(np.ones(3, dtype=np.float32))
    assert (t32 * np.full(3, 2.0)).dtype == np.float64  # a float64 array of shape (3,)
    assert (Tensor(np.ones(3)) * np.float32(2.0)).dtype == np.float64
    assert (t32 * Tensor(np.array(2.0))).dtype == np.float64  # a float64 Tensor widens


def test_a_huge_float64_scalar_becomes_inf_in_float32_without_a_warning():
    t = Tensor(np.ones(2, dtype=np.float32))
    with np.errstate(all="raise"):
        out = t * np.float64(1e300)
    assert out.dtype == np.float32 and np.isinf(out.data).all()


# ---------------------------------------------------------------------------
# Value == Value compares numbers; nodes are still hashed by identity.
# ---------------------------------------------------------------------------


def test_value_equality_compares_numbers():
    a, b = Value(2.0), Value(2.0)
    assert a == b
    assert not (a != b)  # noqa: SIM202  (__ne__ is checked on its own)
    assert a == 2 and 2.0 == a and a != 3.0  # noqa: SIM300  (the reflected form too)
    assert a == np.float64(2.0)
    assert Value(NAN) != Value(NAN)
    assert (a == "2") is False and a != None  # noqa: E711  (other types: never equal)


def test_values_are_hashed_by_identity_so_graphs_keep_equal_values_apart():
    a, b = Value(2.0), Value(2.0)
    assert len({a, b}) == 2
    grads = {a: "a", b: "b"}
    assert grads[a] == "a" and grads[b] == "b"
    out = a * b + a
    ga, gb = cr.grad(out, [a, b])
    assert (ga.data, gb.data) == (3.0, 2.0)
    out.backward()
    assert (a.grad, b.grad) == (3.0, 2.0)


# ---------------------------------------------------------------------------
# softplus has no threshold.
# ---------------------------------------------------------------------------


def test_softplus_is_exact_above_twenty():
    x = _leaf([19.0, 20.0, 21.0, 30.0, 40.0])
    y = F.softplus(x)
    np.testing.assert_array_equal(y.data, np.logaddexp(0.0, x.data))
    assert y.data[3] > 30.0  # 30 + e^-30, not 30
    (g,) = cr.grad(y.sum(), [x])
    assert g.data[3] < 1.0
    assert cr.gradgradcheck(F.softplus, [_leaf([19.99, 20.0, 20.01])])


def test_value_compared_with_a_tensor_is_refused_and_with_an_array_is_false():
    v = Value(2.0)
    assert (v == np.array([2.0])) is False
    with pytest.raises(TypeError, match="cannot mix a Tensor with a Value"):
        _ = v == Tensor(2.0)
